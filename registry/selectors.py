"""Read queries shared by the registry's API and pages."""

from __future__ import annotations

import re

from accounts.models import Role
from accounts.permissions import project_for_user
from core.errors import NotFound
from registry.models import ALIAS_RE, AliasEvent, ModelAlias, ModelVersion, RegisteredModel


def model_for_user(user, slug: str, name: str, min_role: Role = Role.VIEWER) -> RegisteredModel:
    project = project_for_user(user, slug, min_role=min_role)
    model = RegisteredModel.objects.select_related("owner").filter(project=project, name=name).first()
    if model is None:
        raise NotFound(f"No model named '{name}' in this project.")
    model.project = project  # keeps user_role set by the permission check
    return model


# No registry holds a billion versions; a longer number names none, and is never sent
# to the database (SQLite refuses integers past 64 bits).
VERSION_DIGITS_MAX = 9


def is_version_number(ref: str) -> bool:
    """Whether a reference is a version number rather than an alias: ASCII digits only
    ("²" and "①" are digits to ``str.isdigit()``, and int() refuses them)."""
    return ref.isascii() and ref.isdigit()


def version_by_ref(model: RegisteredModel, ref: str | int) -> ModelVersion:
    """A version by number, or the version an alias points at now."""
    ref = str(ref)
    qs = ModelVersion.objects.select_related("model", "run", "author", "check_job")
    if is_version_number(ref):
        version = None
        if len(ref) <= VERSION_DIGITS_MAX:
            version = qs.filter(model=model, version=int(ref)).first()
        if version is None:
            raise NotFound(f"{model.name} has no version {ref[:20]}.")
    else:
        # A ref no alias may be named is never looked up (see ALIAS_RE).
        alias = None
        if re.fullmatch(ALIAS_RE, ref):
            alias = ModelAlias.objects.filter(model=model, name=ref).first()
        if alias is None:
            raise NotFound(f"{model.name} has no alias {ref!r}.")
        version = qs.get(pk=alias.version_id)
    version.model = model
    return version


def aliases_by_version(model: RegisteredModel) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name, version_id in ModelAlias.objects.filter(model=model).values_list("name", "version_id"):
        out.setdefault(version_id, []).append(name)
    return out


def alias_history(model: RegisteredModel, alias: str | None = None, limit: int = 200) -> list[AliasEvent]:
    events = AliasEvent.objects.filter(model=model).select_related("version", "previous_version", "actor")
    if alias is not None:
        events = events.filter(alias=alias)
    return list(events[:limit])


def versions_compare(a: ModelVersion, b: ModelVersion) -> dict:
    """Two versions' metrics side by side (each a snapshot taken at registration)."""
    keys = sorted(set(a.metrics) | set(b.metrics))
    rows = []
    for key in keys:
        va, vb = a.metrics.get(key), b.metrics.get(key)
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rows.append({"key": key, "a": va, "b": vb, "delta": delta})
    return {
        "a": {"version": a.version, "run_id": str(a.run_id), "runtime": a.runtime, "status": a.status},
        "b": {"version": b.version, "run_id": str(b.run_id), "runtime": b.runtime, "status": b.status},
        "metrics": rows,
    }
