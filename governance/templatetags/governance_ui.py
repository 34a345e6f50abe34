from django import template
from django.utils.html import format_html

register = template.Library()

BADGES = {
    "checks_running": "running", "blocked": "failed", "in_review": "queued", "approved": "succeeded",
    "rejected": "failed", "withdrawn": "cancelled", "superseded": "cancelled",
    "passed": "succeeded", "failed": "failed", "pending": "running",
}


@register.filter
def promotion_badge(status: str) -> str:
    label = (status or "").replace("_", " ")
    return format_html('<span class="badge badge-{}" data-status="{}">{}</span>',
                       BADGES.get(status, "queued"), status, label)
_BADGES = {"queued": "queued", "running": "running", "succeeded": "succeeded", "failed": "failed",
           "waiting_for_checks": "queued", "not_applicable": "none"}
_LABELS = {"waiting_for_checks": "waiting for checks", "not_applicable": "not applicable"}
TOP_FEATURES = 20


@register.filter
def analysis_status(status: str):
    return format_html('<span class="badge badge-{}">{}</span>', _BADGES.get(status, "none"),
                       _LABELS.get(status, status or "—"))


@register.filter
def rate(value) -> str:
    # A metric the audit did not compute for a group reaches here as None or "" (a missing key).
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


@register.filter
def ci(value, interval) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    if not interval or None in interval:
        return f"{value:.3f}"
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


@register.filter
def ci_of(summary: dict, metric: str) -> str:
    """A summary's metric with its bootstrap interval, when the audit computed one."""
    return ci(summary.get(metric), (summary.get("ci") or {}).get(metric))


@register.filter
def fairness_chart_data(report: dict) -> dict:
    """What the chart draws: the per-group rate of each single sensitive feature."""
    metric = "selection_rate" if report.get("task") == "classification" else "mean_prediction"
    single = {f for f, s in report.get("summary", {}).items() if len(s.get("columns") or [f]) == 1}
    series: dict[str, dict] = {}
    for group in report.get("groups", []):
        if group["feature"] in single:
            entry = series.setdefault(group["feature"], {"groups": [], "values": [], "counts": []})
            entry["groups"].append(group["group"])
            entry["values"].append(group.get(metric))
            entry["counts"].append(group.get("count"))
    return {"metric": metric, "series": series}


@register.filter
def explanation_chart_data(explanation: dict) -> dict:
    importance = list((explanation.get("global_importance") or {}).items())[:TOP_FEATURES]
    beeswarm = explanation.get("beeswarm") or {}
    return {"output": explanation.get("output"), "importance": importance,
            "beeswarm": {name: beeswarm[name] for name, _ in importance if name in beeswarm}}
