"""docs/sdk.md documents every public function and method of the SDK; each has a Google-style docstring."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import steward
import steward.keys
import steward.sklearn

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def _section(title: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n### ", start + 1)
    return text[start: end if end != -1 else None]


def _public_members(cls: type) -> list[tuple[str, object]]:
    members = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, property):
            members.append((name, static.fget))
        elif isinstance(static, (staticmethod, classmethod)) or inspect.isfunction(static):
            members.append((name, getattr(cls, name)))
    return members


def _api() -> list[tuple[str, str, object]]:
    """(reference section, name, object) for every public function, method and property."""
    api = []
    for name in steward.__all__:
        obj = getattr(steward, name)
        if inspect.isfunction(obj):
            api.append(("Module functions (`steward.*`)", name, obj))
    for cls, section in ((steward.Run, "`Run`"), (steward.Client, "`Client`"),
                         (steward.StoredRun, "`StoredRun`"),
                         (steward.RunOptions, "`RunOptions`, `RunInfo`, `SyncReport`"),
                         (steward.SyncReport, "`RunOptions`, `RunInfo`, `SyncReport`")):
        api.extend((section, name, obj) for name, obj in _public_members(cls))
    for module in (steward.sklearn, steward.keys):
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == module.__name__:
                api.append((f"`{module.__name__}`", name, obj))
    return api


API = _api()


def test_the_public_api_is_what_this_test_looks_at():
    names = {name for _, name, _ in API}
    assert {"start_run", "set_experiment", "autolog", "log_figure", "log_image", "search_runs", "get_run",
            "log_model", "log_dataset", "log_bytes", "submit_sweep", "search_runs_df", "rerun",
            "register_model", "predict", "run_id_for", "param_text"} <= names
    assert len(API) > 90


@pytest.mark.parametrize(("section", "name", "obj"), API, ids=[f"{s}:{n}" for s, n, _ in API])
def test_every_public_function_and_method_is_in_the_guide(section, name, obj):
    text = _section(section)
    assert re.search(rf"`{re.escape(name)}[(`]", text) or f"`{name}`" in text, (
        f"docs/sdk.md, section {section}, does not document {name}")


@pytest.mark.parametrize(("section", "name", "obj"), API, ids=[f"{s}:{n}" for s, n, _ in API])
def test_every_public_function_and_method_has_a_google_style_docstring(section, name, obj):
    doc = inspect.getdoc(obj)
    assert doc and doc.strip(), f"{name} has no docstring"
    assert ":param " not in doc and ":returns:" not in doc, f"{name}: Google style (Args:, Returns:)"
    assert not re.search(r"^\s*(Parameters|Returns)\n\s*-{3,}", doc, re.M), f"{name}: Google style, not NumPy"
