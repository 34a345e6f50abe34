"""Write paths of the model registry: registered models, aliases (protected ones too) and deletes.

Registering a version and its checks are in `registration.py`, batch scoring in `batch_scoring.py`.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.json_input import check_json_value
from accounts.models import Project
from core.audit import audit_record
from core.errors import Conflict, NotFound, PermissionDenied
from experiments.artifacts import artifact_storage, blob_delete
from registry.models import (
    ALIAS_RE,
    AliasEvent,
    AliasEventKind,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)


class AliasProtected(PermissionDenied):
    code = "alias_protected"
    default_message = "This alias is protected."


class ProtectionRemovalNeedsApproval(PermissionDenied):
    code = "approval_required"
    default_message = "Removing an alias from the protected list needs an approved protection change request."


class PickleModelsOff(PermissionDenied):
    code = "pickle_models_off"
    default_message = (
        "Pickle and joblib model files are off on this server (ALLOW_PICKLE_MODELS), so no file can be "
        "trusted: log the model as skops instead (the steward SDK's run.log_model does)."
    )


# --- Registered models ----------------------------------------------------------------------


def _tags_clean(tags: Any) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or len(tags) > 100:
        raise ValidationError({"tags": "Must be an object of at most 100 key: value strings."})
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise ValidationError({"tags": "Tag keys are 1-250 characters."})
        if not isinstance(value, str) or len(value) > 5000:
            raise ValidationError({f"tags.{key}": "Tag values are strings of at most 5000 characters."})
        out[key] = value
    return check_json_value(out, field="tags")


def registered_model_create(
    *, project: Project, name: str, user, description: str = "", tags: dict | None = None
) -> RegisteredModel:
    model = RegisteredModel(
        project=project, name=name, description=description or "", owner=user, tags=_tags_clean(tags)
    )
    model.full_clean(exclude=["project", "owner"], validate_unique=False)
    try:
        with transaction.atomic():
            model.save()
            audit_record(
                action="model.registered", actor=user, object_type="registry.RegisteredModel",
                object_id=model.pk, project_id=project.pk,
                after={"name": model.name, "protected_aliases": model.protected_aliases},
            )
    except IntegrityError:
        raise Conflict(f"A model named '{name}' already exists.") from None
    return model


def registered_model_get_or_create(*, project: Project, name: str, user) -> RegisteredModel:
    model = RegisteredModel.objects.filter(project=project, name=name).first()
    if model is not None:
        return model
    try:
        return registered_model_create(project=project, name=name, user=user)
    except Conflict:
        # Two registrations of a new model raced; the first one created it.
        return RegisteredModel.objects.get(project=project, name=name)


def registered_model_update(
    *, model: RegisteredModel, description: str | None = None, tags: dict | None = None,
    log_pii: bool | None = None, user=None,
) -> RegisteredModel:
    fields = ["updated_at"]
    log_pii_before = model.log_pii
    if description is not None:
        model.description = description
        fields.append("description")
    if tags is not None:
        model.tags = _tags_clean(tags)
        fields.append("tags")
    if log_pii is not None:
        model.log_pii = bool(log_pii)
        fields.append("log_pii")
    model.updated_at = timezone.now()
    with transaction.atomic():
        model.save(update_fields=fields)
        if model.log_pii != log_pii_before:
            # Whether PII values reach the prediction log is a governance decision.
            audit_record(
                action="model.log_pii_changed", actor=user, object_type="registry.RegisteredModel",
                object_id=model.pk, project_id=model.project_id,
                before={"model": model.name, "log_pii": log_pii_before},
                after={"model": model.name, "log_pii": model.log_pii},
            )
    return model


def registered_model_rename(*, model: RegisteredModel, new_name: str) -> RegisteredModel:
    model.name = new_name
    model.full_clean(exclude=["project", "owner"], validate_unique=False)
    model.updated_at = timezone.now()
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise Conflict(f"A model named '{new_name}' already exists.") from None
    return model


def model_version_describe(*, version: ModelVersion, description: str) -> ModelVersion:
    version.description = description
    version.save(update_fields=["description"])
    return version


def alias_name_clean(alias: Any, field: str = "alias") -> str:
    if not isinstance(alias, str) or not re.fullmatch(ALIAS_RE, alias):
        raise ValidationError({field: "An alias is 1-64 letters, digits, '_' or '-'."})
    if alias.isdigit():
        raise ValidationError({field: "An alias cannot be all digits: it would read as a version number."})
    return alias


def _approval_via(approval) -> str:
    meta = getattr(approval, "_meta", None)
    return f"approval:{meta.label_lower if meta else 'approval'}:{approval.pk}"[:200]


@transaction.atomic
def model_protected_aliases_set(
    *, model: RegisteredModel, aliases: Any, user, approval=None
) -> RegisteredModel:
    """Owners choose which aliases move only by approval; each change is kept in the alias history.

    Adding protection is direct. Taking an alias off the list is not: otherwise one owner could
    unprotect ``champion``, move it by hand and protect it again with no one else's say. A removal
    needs ``approval``, the approved protection change request (any saved model instance) that the
    governance workflow passes; it is recorded in the alias history.
    """
    if not isinstance(aliases, list):
        raise ValidationError({"protected_aliases": "Must be a list of alias names."})
    wanted = sorted({alias_name_clean(a, "protected_aliases") for a in aliases})
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    before = set(model.protected_aliases or [])
    removed = sorted(before - set(wanted))
    if removed and (approval is None or getattr(approval, "pk", None) is None):
        names = ", ".join(f"'{a}'" for a in removed)
        raise ProtectionRemovalNeedsApproval(
            f"Removing {names} from the protected aliases of {model.name} needs an approved protection "
            f"change request: ask for it (POST /api/v1/projects/{model.project.slug}/models/{model.name}/"
            "protection-requests/ or the model page) and a reviewer other than you approves it. "
            "Adding protection needs no approval."
        )
    via = _approval_via(approval) if approval is not None and removed else ""
    now = timezone.now()
    events = [
        AliasEvent(model=model, alias=a, kind=AliasEventKind.PROTECTED, actor=user, created_at=now)
        for a in sorted(set(wanted) - before)
    ] + [
        AliasEvent(model=model, alias=a, kind=AliasEventKind.UNPROTECTED, actor=user, via=via, created_at=now)
        for a in removed
    ]
    AliasEvent.objects.bulk_create(events)
    model.protected_aliases = wanted
    model.updated_at = now
    model.save(update_fields=["protected_aliases", "updated_at"])
    if events:
        audit_record(
            action="model.protected_aliases_changed", actor=user, object_type="registry.RegisteredModel",
            object_id=model.pk, project_id=model.project_id,
            before={"model": model.name, "protected_aliases": sorted(before)},
            after={"model": model.name, "protected_aliases": wanted, **({"via": via} if via else {})},
        )
    return model

# --- Aliases --------------------------------------------------------------------------------


def _alias_move(*, model: RegisteredModel, alias: str, version: ModelVersion, actor, via: str) -> ModelAlias:
    if version.model_id != model.pk:
        raise ValidationError({"version": "That version belongs to another model."})
    if version.status != VersionStatus.READY:
        raise ValidationError(
            {"version": f"Version {version.version} is {version.get_status_display()}; only a ready version "
                        "can carry an alias."}
        )
    now = timezone.now()
    current = ModelAlias.objects.select_for_update().filter(model=model, name=alias).first()
    previous = current.version if current else None
    if current is None:
        current = ModelAlias.objects.create(
            model=model, name=alias, version=version, updated_by=actor, updated_at=now
        )
    elif current.version_id != version.pk:
        current.version, current.updated_by, current.updated_at = version, actor, now
        current.save(update_fields=["version", "updated_by", "updated_at"])
    else:
        return current
    AliasEvent.objects.create(
        model=model, alias=alias, kind=AliasEventKind.SET, version=version, previous_version=previous,
        actor=actor, via=via, created_at=now,
    )
    audit_record(
        action="alias.moved", actor=actor, object_type="registry.ModelAlias", object_id=current.pk,
        project_id=model.project_id,
        before={"model": model.name, "alias": alias, "version": previous.version if previous else None},
        after={"model": model.name, "alias": alias, "version": version.version, "sha256": version.sha256,
               "via": via, "protected": model.is_protected(alias)},
    )
    return current


def _model_locked(model: RegisteredModel) -> RegisteredModel:
    # Alias moves of one model are serialised on its row, so history stays in order.
    return RegisteredModel.objects.select_for_update().get(pk=model.pk)


def _refuse_protected(model: RegisteredModel, alias: str) -> None:
    if model.is_protected(alias):
        raise AliasProtected(
            f"'{alias}' is a protected alias of {model.name}: it moves only through an approved "
            "promotion request, not by hand."
        )


@transaction.atomic
def alias_set(
    *, model: RegisteredModel, alias: Any, version: ModelVersion, user, via: str = "api"
) -> ModelAlias:
    alias = alias_name_clean(alias)
    model = _model_locked(model)
    _refuse_protected(model, alias)
    return _alias_move(model=model, alias=alias, version=version, actor=user, via=via)


@transaction.atomic
def alias_remove(*, model: RegisteredModel, alias: Any, user, via: str = "api") -> None:
    alias = alias_name_clean(alias)
    model = _model_locked(model)
    _refuse_protected(model, alias)
    current = ModelAlias.objects.filter(model=model, name=alias).first()
    if current is None:
        raise NotFound(f"No alias '{alias}' on {model.name}.")
    AliasEvent.objects.create(
        model=model, alias=alias, kind=AliasEventKind.REMOVED, version=None,
        previous_version=current.version, actor=user, via=via,
    )
    audit_record(
        action="alias.removed", actor=user, object_type="registry.ModelAlias", object_id=current.pk,
        project_id=model.project_id,
        before={"model": model.name, "alias": alias, "version": current.version.version},
        after={"via": via},
    )
    current.delete()


@transaction.atomic
def model_version_delete(*, version: ModelVersion, user) -> None:
    """Delete a model version, unless an alias points at it (move or remove the alias first).

    The run it was registered from and that run's artifact stay; the version's own ONNX
    export is deleted once the deletion commits.
    """
    model = _model_locked(version.model)
    aliases = sorted(ModelAlias.objects.filter(model=model, version=version).values_list("name", flat=True))
    if aliases:
        names = ", ".join(f"'{a}'" for a in aliases)
        raise Conflict(f"{model.name} v{version.version} cannot be deleted: alias {names} points at it. "
                       "Move or remove the alias first.")
    audit_record(action="model_version.delete", actor=user, object_type="model_version",
                 object_id=version.pk, project_id=model.project_id,
                 before={"model": model.name, "version": version.version, "sha256": version.sha256,
                         "status": version.status}, after=None)
    onnx = version.onnx_storage_name
    try:
        with transaction.atomic():
            version.delete()
    except ProtectedError as exc:
        raise Conflict(f"{model.name} v{version.version} cannot be deleted: "
                       f"{len(exc.protected_objects)} record(s) still refer to it.") from None
    if onnx:
        storage = artifact_storage()
        transaction.on_commit(lambda: blob_delete(storage, onnx))


@transaction.atomic
def registered_model_delete(*, model: RegisteredModel, user) -> None:
    """Delete a registered model with its versions, unless an alias points at one of them (move or
    remove the aliases first).

    Each version goes the way ``model_version_delete`` takes it, audited one by one: a version
    that a promotion request or another record still refers to stops the whole deletion. The runs
    the versions were registered from, and their artifacts, stay.
    """
    model = _model_locked(model)
    aliases = list(ModelAlias.objects.filter(model=model).order_by("name")
                   .values_list("name", "version__version"))
    if aliases:
        names = ", ".join(f"'{name}' (v{number})" for name, number in aliases)
        raise Conflict(f"{model.name} cannot be deleted: alias {names} points at its versions. "
                       "Move or remove the aliases first.")
    numbers = []
    for version in model.versions.order_by("version"):
        version.model = model
        model_version_delete(version=version, user=user)
        numbers.append(version.version)
    audit_record(action="registered_model.delete", actor=user, object_type="registry.RegisteredModel",
                 object_id=model.pk, project_id=model.project_id,
                 before={"name": model.name, "versions": numbers}, after=None)
    model.delete()


@transaction.atomic
def alias_set_protected(
    *, model: RegisteredModel, alias: Any, version: ModelVersion, approval, actor=None
) -> ModelAlias:
    """Move a protected alias as the outcome of an approved promotion.

    The one way a protected alias moves. Only the approval workflow calls this;
    the API and the pages call ``alias_set``, which refuses protected aliases.
    ``approval`` is the approved request (any saved model instance); it is
    recorded in the alias history with the actor.
    """
    alias = alias_name_clean(alias)
    if approval is None or getattr(approval, "pk", None) is None:
        raise ValidationError({"approval": "A protected alias moves only with a saved approval."})
    model = _model_locked(model)
    return _alias_move(model=model, alias=alias, version=version, actor=actor, via=_approval_via(approval))


@transaction.atomic
def alias_remove_protected(*, model: RegisteredModel, alias: Any, approval, actor=None) -> None:
    """Take a protected alias off its version as the outcome of an approved decision (rolling back
    the first promotion of an alias leaves it pointing nowhere). Recorded like ``alias_set_protected``."""
    alias = alias_name_clean(alias)
    if approval is None or getattr(approval, "pk", None) is None:
        raise ValidationError({"approval": "A protected alias moves only with a saved approval."})
    model = _model_locked(model)
    current = ModelAlias.objects.select_for_update().filter(model=model, name=alias).first()
    if current is None:
        raise NotFound(f"No alias '{alias}' on {model.name}.")
    meta = getattr(approval, "_meta", None)
    via = f"approval:{meta.label_lower if meta else 'approval'}:{approval.pk}"
    AliasEvent.objects.create(
        model=model, alias=alias, kind=AliasEventKind.REMOVED, version=None,
        previous_version=current.version, actor=actor, via=via[:200],
    )
    current.delete()
