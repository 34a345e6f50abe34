"""Plotly figures stored as run artifacts (plots/*.json), made safe to draw in a viewer's browser.

A figure is data its uploader wrote, and Plotly fetches some of it: layout images, image
traces, map layers and styles, GeoJSON given as a URL. Drawn as stored, a figure would make
every viewer's browser call whatever address an editor chose. The stored artifact is never
changed (it is what was uploaded, with its hash); the copy the run page draws is cleaned
when it is read, so figures stored before this rule are drawn safely too. The page's
Content-Security-Policy would block such fetches anyway; cleaning first means the chart
draws without them instead of failing against the policy.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from django.core.exceptions import ValidationError

from core.errors import PayloadTooLarge
from experiments import artifacts
from experiments.models import Run

FIGURE_MAX_BYTES = 20 * 1024 * 1024

# Map and geo traces draw with tiles, fonts, icons or outlines that Plotly loads from third
# parties (and that Steward does not serve), so they are left out, with their subplots.
_OFFSITE_TRACE_TYPES = frozenset({
    "scattergeo", "choropleth", "scattermapbox", "choroplethmapbox", "densitymapbox",
    "scattermap", "choroplethmap", "densitymap",
})
_OFFSITE_SUBPLOT = re.compile(r"(mapbox|map|geo)\d*")
# CSS `url(` in a text's inline style (Plotly's pseudo-HTML allows <span style>).
_CSS_URL = re.compile(r"url\s*\([^)]*\)?", re.IGNORECASE)


def _is_data_uri(value: Any) -> bool:
    return isinstance(value, str) and value.strip()[:5].lower() == "data:"


_ADDRESS = re.compile(r"\s*(([a-z][a-z0-9+.-]*:)?//|/|\.{1,2}/|(https?|ftp|blob|filesystem|wss?):)",
                      re.IGNORECASE)


def _looks_like_address(value: str) -> bool:
    return bool(_ADDRESS.match(value))


def _attribute(key: str) -> tuple[str, str]:
    """'mapbox.layers[0].source' -> ('layers', 'source'): a key and its parent, as relayout names them."""
    parts = [re.sub(r"\[\d+\]$", "", p) for p in str(key).split(".")]
    return (parts[-2] if len(parts) > 1 else ""), parts[-1]


def _keep(parent: str, key: str, value: Any) -> bool:
    """Whether one attribute of a figure may stay."""
    inner_parent, name = _attribute(key)
    parent = inner_parent or parent
    if name == "source":  # layout.images[], image traces, map layers
        return _is_data_uri(value) or isinstance(value, dict)
    if name == "geojson":  # a URL string is fetched; an object is the data itself
        return not isinstance(value, str)
    if name in _OFFSITE_TRACE_TYPES or _OFFSITE_SUBPLOT.fullmatch(name) or _OFFSITE_SUBPLOT.fullmatch(parent):
        return False
    return not (name == "type" and value in _OFFSITE_TRACE_TYPES)


def _clean_string(value: str) -> str:
    return _CSS_URL.sub("", value) if "url" in value.lower() else value


def figure_clean(figure: Any) -> dict:
    """A copy of ``figure`` with nothing left in it that makes a browser fetch another address."""
    if not isinstance(figure, dict):
        raise ValidationError({"figure": "A Plotly figure is a JSON object with data and layout."})
    # Iterative, not recursive: a figure nested deeper than Python's recursion limit is valid JSON.
    root: dict = {}
    stack: list[tuple[Any, Any, str, bool]] = [(figure, root, "", False)]
    while stack:
        source, target, parent, in_args = stack.pop()
        if isinstance(source, dict):
            for key, value in source.items():
                if _keep(parent, key, value):
                    target[key] = _copy_into(value, stack, key, in_args or key in ("args", "args2"))
        else:
            for value in source:
                if parent == "data" and isinstance(value, dict) and value.get("type") in _OFFSITE_TRACE_TYPES:
                    continue
                target.append(_copy_into(value, stack, parent, in_args))
    return root


def _copy_into(value: Any, stack: list, parent: str, in_args: bool) -> Any:
    if isinstance(value, dict):
        copy: Any = {}
    elif isinstance(value, list):
        copy = []
    elif isinstance(value, str):
        # Buttons and sliders call relayout/restyle with [attribute, value] pairs, so an
        # address among their arguments could set an image source when clicked.
        if in_args and _looks_like_address(value):
            return ""
        return _clean_string(value)
    else:
        return value
    stack.append((value, copy, parent, in_args))
    return copy


def figure_for_display(*, run: Run, path: str, user) -> dict:
    """The stored figure at ``path`` of ``run``, cleaned by ``figure_clean``."""
    if not (path.startswith("plots/") and path.endswith(".json")):
        raise ValidationError({"path": "Only plots/*.json artifacts are drawn as figures."})
    artifact, handle = artifacts.artifact_open(run=run, path=path, user=user)
    try:
        if artifact.size > FIGURE_MAX_BYTES:
            raise PayloadTooLarge(f"The figure is larger than {FIGURE_MAX_BYTES // 2**20} MiB; download it.")
        raw = handle.read(FIGURE_MAX_BYTES + 1)
    finally:
        handle.close()
    if len(raw) > FIGURE_MAX_BYTES:
        raise PayloadTooLarge(f"The figure is larger than {FIGURE_MAX_BYTES // 2**20} MiB; download it.")
    try:
        figure = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            # Python's json writes NaN for a missing value, which orjson refuses to read.
            figure = json.loads(raw)
        except (ValueError, RecursionError):
            raise ValidationError({"figure": "The artifact is not valid JSON."}) from None
    return figure_clean(figure)
