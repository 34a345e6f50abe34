"""Template helpers for Steward's pages: safe Markdown, badges, number and time formatting."""

from __future__ import annotations

import datetime as dt
import math
import re

import markdown as md
import nh3
from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()

MARKDOWN_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
# Everything else (javascript:, data:, vbscript:) is dropped from links.
MARKDOWN_URL_SCHEMES = {"http", "https", "mailto"}


@register.filter
def markdown_safe(text: str | None) -> str:
    """Markdown rendered to HTML, then sanitised: raw HTML and unsafe links come out inert."""
    if not text:
        return ""
    html = md.markdown(text, extensions=["fenced_code", "tables", "sane_lists"])
    clean = nh3.clean(
        html,
        tags=MARKDOWN_TAGS,
        attributes=MARKDOWN_ATTRIBUTES,
        url_schemes=MARKDOWN_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - nh3 has just sanitised it


@register.filter
def status_badge(status: str | None):
    status = (status or "").strip()
    return format_html('<span class="badge badge-{}">{}</span>', status.lower() or "none", status or "—")


@register.filter
def duration(value: dt.timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{value.total_seconds():.1f} s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s"


@register.filter
def metric(value) -> str:
    """A metric value short enough for a table cell; NaN/inf as words."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number == 0 or 1e-4 <= abs(number) < 1e6:
        return f"{number:.6g}"
    return f"{number:.4e}"


@register.filter
def get_item(mapping, key):
    if mapping is None:
        return None
    return mapping.get(key)


@register.filter
def filesize(value) -> str:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None and value != "":
            params[key] = value
    encoded = params.urlencode()
    return "?" + encoded if encoded else "?"


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.simple_tag
def runs_table_body(rows) -> str:
    """The runs table's rows, built in Python: up to 200 rows of ~20 cells each would
    cost more in template tags and filters (or format_html per cell) than the queries do.
    Every value is passed through escape(); the CSS classes are constants from the view."""
    if not rows:
        return ""
    zero = "00000000-0000-0000-0000-000000000000"
    run_url = reverse("experiments:run", args=[zero])
    parts = []
    for row in rows:
        run = row["run"]
        run_id = str(run.pk)
        name = escape(shorten(run.name or run_id, 60))
        started = timezone.localtime(run.start_time).strftime("%Y-%m-%d %H:%M")
        author = escape(run.author.username) if run.author else "—"
        cells = "".join(f'<td class="{css}">{escape(text)}</td>' for text, css in row["cells"])
        parts.append(
            f'<tr data-run-id="{run_id}"><td><input type="checkbox" name="runs" value="{run_id}" '
            f'aria-label="Select {name}"></td><td class="ellipsis"><a href="{run_url.replace(zero, run_id)}">'
            f'{name}</a></td><td>{status_badge(run.status)}</td><td class="nowrap">{started}</td>'
            f'<td class="nowrap hide-phone">{escape(duration(run.duration))}</td>'
            f'<td class="hide-phone">{author}</td>{cells}</tr>'
        )
    return mark_safe("\n".join(parts))  # noqa: S308 - every value above went through escape()


JOB_KINDS = {
    "training": "Training",
    "dataset_profile": "Dataset profile",
    "dataset_validate": "Dataset validation",
    "run_summary": "Metric summary",
    "artifact_verify": "Artifact check",
    "model_version_check": "Model version checks",
    "batch_score": "Batch scoring",
}
# np.float64(14.23), numpy.int64(3), np.str_('a'): how NumPy 2 prints a scalar inside a message.
_NUMPY_SCALAR = re.compile(r"\bn(?:um)?py?\.(?:float|int|uint|bool|str|complex)\w*_?\(([^()]*)\)")


@register.filter
def job_kind(kind: str | None) -> str:
    """A job's kind in words: "Model version checks", not model_version_check."""
    if not kind:
        return "Job"
    return JOB_KINDS.get(kind) or kind.replace("_", " ").strip().capitalize()


@register.filter
def plain_words(text: str | None) -> str:
    """A message with NumPy's scalar wrappers taken off the values: 14.23, not np.float64(14.23)."""
    if not text:
        return ""
    return _NUMPY_SCALAR.sub(lambda m: m.group(1).strip("'\""), str(text))
