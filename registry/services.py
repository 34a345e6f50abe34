"""Write paths of the model registry: models, versions and their checks, aliases, trust."""

from __future__ import annotations

import posixpath
import re
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from accounts.json_input import check_json_value, json_parse
from accounts.models import Project
from accounts.selectors import pii_columns, pii_mask_rows
from core import jobs
from core.audit import audit_record
from core.errors import Conflict, NotFound, PermissionDenied
from core.models import Job
from datasets.models import DatasetVersion, LineageDirection, RunDataset
from experiments.artifacts import artifact_path_clean, artifact_pii_mark, artifact_storage, blob_delete
from experiments.models import Artifact, Run
from registry import signature as sig
from registry.loading import ModelLoadRefused, estimator_load, pickle_refusal, pickle_trust
from registry.models import (
    ALIAS_RE,
    AliasEvent,
    AliasEventKind,
    ModelAlias,
    ModelFormat,
    ModelVersion,
    OutputKind,
    RegisteredModel,
    Runtime,
    TrustedModelHash,
    VersionStatus,
)
from registry.signals import model_version_status_changed, pickle_hash_trusted

CHECK_JOB_KIND = "model_version_check"
MODEL_EXTENSIONS = {".skops": ModelFormat.SKOPS, ".pkl": ModelFormat.PICKLE,
                    ".pickle": ModelFormat.PICKLE, ".joblib": ModelFormat.JOBLIB}
EXAMPLE_FILE = "input_example.json"
# Written next to the model by Steward's own training jobs.
SIGNATURE_FILE = "signature.json"
VERIFY_ROWS = 1000
EXAMPLE_ROWS_KEPT = 20
MAX_EXAMPLE_BYTES = 5 * 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
ZIP_MAGIC = b"PK\x03\x04"


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


def _registered_model_get_or_create(*, project: Project, name: str, user) -> RegisteredModel:
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


# --- Registering a version ------------------------------------------------------------------


def _model_file_format(artifact: Artifact, head: bytes) -> str | None:
    ext = posixpath.splitext(artifact.path)[1].lower()
    fmt = MODEL_EXTENSIONS.get(ext)
    if fmt == ModelFormat.SKOPS and not head.startswith(ZIP_MAGIC):
        raise ValidationError(
            {"artifact_path": f"'{artifact.path}' is named .skops but is not a skops file."}
        )
    return fmt


def _head(artifact: Artifact, size: int = 8) -> bytes:
    try:
        with artifact_storage().open(artifact.storage_name, "rb") as blob:
            return blob.read(size)
    except FileNotFoundError:
        raise ValidationError({"artifact_path": "The artifact's content is missing from storage."}) from None


def _model_artifact_find(*, run: Run, path: str) -> tuple[Artifact, str, str]:
    """(model file artifact, its format, the folder holding it) for a run's artifact path.

    ``path`` names the model file itself or a folder holding exactly one model file.
    """
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is not None:
        fmt = _model_file_format(artifact, _head(artifact))
        if fmt is None:
            raise ValidationError({"artifact_path": f"'{path}' is not a model file (.skops, .pkl, .joblib)."})
        return artifact, fmt, posixpath.dirname(path)
    inside = [
        a for a in Artifact.objects.filter(run=run, path__startswith=path + "/")
        if "/" not in a.path[len(path) + 1:] and posixpath.splitext(a.path)[1].lower() in MODEL_EXTENSIONS
    ]
    if not inside:
        raise ValidationError({"artifact_path": f"The run has no model file at '{path}'."})
    if len(inside) > 1:
        names = ", ".join(a.path for a in inside)
        raise ValidationError({"artifact_path": f"'{path}' holds several model files ({names}); name one."})
    artifact = inside[0]
    return artifact, _model_file_format(artifact, _head(artifact)), path


def _json_artifact(*, run: Run, folder: str, name: str, field: str) -> Any:
    path = f"{folder}/{name}" if folder else name
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None:
        return None
    if artifact.size > MAX_EXAMPLE_BYTES:
        raise ValidationError({field: f"{path} is larger than {MAX_EXAMPLE_BYTES} bytes."})
    try:
        with artifact_storage().open(artifact.storage_name, "rb") as blob:
            raw = blob.read(MAX_EXAMPLE_BYTES + 1)
    except FileNotFoundError:
        raise ValidationError({field: f"{path} is not readable JSON."}) from None
    try:
        return json_parse(raw, allow_nan=True, field=field)
    except ValidationError as exc:
        raise ValidationError({field: f"{path} is not readable JSON: {'; '.join(exc.messages)}"}) from None


def _example_read(*, run: Run, folder: str) -> dict | None:
    data = _json_artifact(run=run, folder=folder, name=EXAMPLE_FILE, field="input_example")
    return None if data is None else sig.example_parse(data)


def _training_dataset(run: Run, recorded: Any) -> DatasetVersion | None:
    """The dataset version the run trained on: as its signature.json says, else its input link."""
    versions = DatasetVersion.objects.select_related("dataset").filter(dataset__project_id=run.project_id)
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        found = versions.filter(pk=recorded).first()
        if found is not None:
            return found
    link = RunDataset.objects.filter(run=run, direction=LineageDirection.INPUT).order_by("id").first()
    return versions.filter(pk=link.dataset_version_id).first() if link else None


def _pii_from_datasets(run: Run) -> frozenset[str]:
    return pii_columns(*DatasetVersion.objects.filter(
        run_links__run=run, run_links__direction=LineageDirection.INPUT
    ).values_list("columns", flat=True))


def _run_metrics(run: Run) -> dict[str, Any]:
    from experiments.validation import float_out

    # What describes the machine (system/...) is not a score of the model.
    rows = run.latest_metrics.exclude(key__startswith="system/").values_list("key", "value")
    return {k: float_out(v) for k, v in rows}


def model_version_create(
    *, project: Project, model_name: str, run: Run, artifact_path: Any, user,
    description: str = "", pii_columns: list[str] | None = None,
    signature: dict | None = None, example: dict | None = None,
) -> ModelVersion:
    """Register the model file a run stored at ``artifact_path`` as the next version of a model.

    The model is created if it does not exist. The version starts as
    pending-checks; a background job loads it safely, fixes its signature,
    converts it to ONNX and verifies the export.

    ``signature`` and ``example`` come from callers that read them from another
    format (an MLflow model's MLmodel and input example); a Steward
    signature.json beside the model file still wins.
    """
    if run.project_id != project.pk:
        # Another project's run is, from here, a run that does not exist.
        raise NotFound("No such run in this project.")
    try:
        path = artifact_path_clean(artifact_path)
    except ValidationError as exc:
        raise ValidationError({"artifact_path": "; ".join(exc.messages)}) from None
    artifact, fmt, folder = _model_artifact_find(run=run, path=path)
    pii = set(pii_columns or [])
    given_signature, signature = signature, {}
    recorded = _json_artifact(run=run, folder=folder, name=SIGNATURE_FILE, field="signature")
    dataset = _training_dataset(run, recorded.get("dataset_version") if isinstance(recorded, dict) else None)
    if recorded is not None:
        example = None
        signature = sig.signature_from_training(recorded, dataset.columns if dataset else None)
    elif given_signature:
        signature = given_signature
    else:
        if example is None:
            example = _example_read(run=run, folder=folder)
        if example is not None:
            signature = sig.signature_from_frame(sig.example_frame(example))
    if signature:
        names = {c["name"] for c in signature["columns"]}
        unknown = pii - names
        if unknown:
            raise ValidationError({"pii_columns": f"Not input columns: {', '.join(sorted(unknown))}."})
        flagged = pii | _pii_from_datasets(run)
        for column in signature["columns"]:
            column["pii"] = column["pii"] or column["name"] in flagged
    elif pii:
        raise ValidationError({"pii_columns": "PII flags need an input signature (log an input example)."})

    with transaction.atomic():
        if any(c["pii"] for c in signature.get("columns", [])):
            # A model fed PII columns keeps their values (encoder categories, imputer fills), as
            # does its input example: from now on only roles that may see PII read either file.
            example_path = f"{folder}/{EXAMPLE_FILE}" if folder else EXAMPLE_FILE
            artifact_pii_mark(artifacts=[artifact, *Artifact.objects.filter(run=run, path=example_path)])
        model = _registered_model_get_or_create(project=project, name=model_name, user=user)
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            model=model, version=number, run=run, artifact=artifact, artifact_path=artifact.path,
            storage_name=artifact.storage_name, sha256=artifact.sha256, size=artifact.size,
            model_format=fmt, signature=signature, example=example or {}, metrics=_run_metrics(run),
            training_dataset_version=dataset,
            author=user, description=description or "",
            status_message="Waiting for its checks to run.",
        )
        RegisteredModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())
        _check_enqueue(version=version, user=user)
        audit_record(
            action="model_version.created", actor=user, object_type="registry.ModelVersion",
            object_id=version.pk, project_id=project.pk,
            after={"model": model.name, "version": number, "run_id": str(run.pk),
                   "artifact_path": artifact.path, "sha256": artifact.sha256, "model_format": fmt},
        )
    return version


def _check_enqueue(*, version: ModelVersion, user) -> Job:
    job = jobs.job_create(
        kind=CHECK_JOB_KIND, project=version.model.project, user=user,
        params={"model_version_id": version.pk},
    )
    ModelVersion.objects.filter(pk=version.pk).update(check_job=job)
    version.check_job = job
    return job


def _status_changed_on_commit(version_id: int, old_status: str) -> None:
    def send() -> None:
        version = ModelVersion.objects.select_related("model__project").get(pk=version_id)
        model_version_status_changed.send(
            sender=ModelVersion, version=version, old_status=old_status, new_status=version.status
        )

    transaction.on_commit(send)


class _CheckRefused(Exception):
    """A version the check refuses; model_version_check records it as failed."""


def _version_fail(version: ModelVersion, message: str) -> None:
    raise _CheckRefused(message)


def _signature_settle(version: ModelVersion, estimator) -> dict:
    names = getattr(estimator, "feature_names_in_", None)
    columns = version.columns
    n_features = getattr(estimator, "n_features_in_", None)
    if not columns and names is None and isinstance(n_features, int) and n_features > 0:
        # Fitted on a plain array: columns x0..xn, as the SDK names them.
        names = [f"x{i}" for i in range(n_features)]
    if not columns:
        if names is None:
            _version_fail(version, "The model has no input signature: log it with an input example "
                                   "(run.log_model(model, input_example=X)).")
        return {"columns": [{"name": str(n), "dtype": "double", "nullable": False, "pii": False}
                            for n in names]}
    if names is not None and [c["name"] for c in columns] != [str(n) for n in names]:
        _version_fail(version, "The input example's columns do not match the columns the model was "
                               f"fitted on ({', '.join(map(str, names))}).")
    n_features = getattr(estimator, "n_features_in_", None)
    if names is None and n_features is not None and n_features != len(columns):
        _version_fail(
            version, f"The model takes {n_features} features; the input example has {len(columns)}."
        )
    return version.signature


def _verification_rows(version: ModelVersion, columns: list[dict]):
    """(frame the model receives, where its rows came from, example rows to keep on the version)."""
    if version.example:
        return sig.example_frame(version.example, columns), "input example", version.example
    dataset = version.training_dataset_version
    if dataset is None:
        return None, "", {}
    from datasets.services import version_read_frame

    names = [c["name"] for c in columns]
    try:
        data = version_read_frame(dataset, columns=names)
    except Exception as exc:  # noqa: BLE001 - unreadable data only costs the ONNX check
        return None, f"dataset {dataset} (unreadable: {exc})", {}
    if len(data) > VERIFY_ROWS:
        data = data.sample(VERIFY_ROWS, random_state=0)
    rows = sig.example_coerce(sig.example_from_frame(data[names]), columns)
    frame = sig.example_frame(rows, columns)
    kept = sig.example_coerce(sig.example_from_frame(data[names], rows=EXAMPLE_ROWS_KEPT), columns)
    # The page shows example rows to viewers, who must not see PII values.
    kept["data"] = pii_mask_rows(kept["data"], names, pii_columns(columns), mask=None)
    return frame, f"{len(frame)} rows of dataset {dataset.dataset.name} v{dataset.version}", kept


def model_version_check(*, job_id: int) -> None:
    """Job body: load a version safely, settle its signature, convert to ONNX and verify it."""
    from sklearn.base import is_classifier, is_regressor

    from registry.onnx_export import convert_and_verify

    def work(job: Job) -> dict:
        version = ModelVersion.objects.select_related("model", "training_dataset_version__dataset").filter(
            pk=job.params.get("model_version_id")
        ).first()
        if version is None:
            raise ValidationError({"model_version_id": "The model version no longer exists."})
        if version.status != VersionStatus.PENDING_CHECKS:
            return {"status": version.status}
        try:
            if version.is_pickle and not settings.ALLOW_PICKLE_MODELS:
                _version_fail(version, pickle_refusal(version))
            if version.is_pickle and pickle_trust(version) is None:
                # Stays stored and pending; never deserialised until an administrator trusts its sha256.
                with transaction.atomic():
                    jobs.job_guard(job=job)
                    ModelVersion.objects.filter(pk=version.pk).update(
                        status_message=f"Untrusted {version.model_format} file: it is stored but will not "
                                       f"be loaded until an instance administrator trusts sha256 "
                                       f"{version.sha256}."
                    )
                return {"status": "untrusted"}
            return check(job, version)
        except _CheckRefused as exc:
            with transaction.atomic():
                jobs.job_guard(job=job)
                failed = ModelVersion.objects.filter(pk=version.pk).update(
                    status=VersionStatus.FAILED, status_message=str(exc)[:5000], runtime=Runtime.NONE,
                    checked_at=timezone.now(),
                )
                if failed:
                    _status_changed_on_commit(version.pk, version.status)
            raise ValidationError(str(exc)) from None

    def check(job: Job, version: ModelVersion) -> dict:
        jobs.job_progress(job=job, progress=10, message="Loading the model safely")
        try:
            estimator = estimator_load(version)
        except ModelLoadRefused as exc:
            _version_fail(version, str(exc))
        if not hasattr(estimator, "predict"):
            _version_fail(version, f"A {type(estimator).__name__} is not a fitted model with predict().")
        if is_classifier(estimator):
            kind = OutputKind.CLASSIFICATION
            classes = [c.item() if hasattr(c, "item") else c for c in getattr(estimator, "classes_", [])]
        elif is_regressor(estimator):
            kind, classes = OutputKind.REGRESSION, []
        else:
            _version_fail(version, "Only scikit-learn classifiers and regressors can be served.")
        signature = _signature_settle(version, estimator)
        frame, source, example = _verification_rows(version, signature["columns"])
        if frame is not None:
            try:
                estimator.predict(frame)
            except Exception as exc:  # noqa: BLE001 - the model's own failure, reported on its page
                _version_fail(version, f"The model fails on its own {source}: {type(exc).__name__}: {exc}")

        jobs.job_progress(job=job, progress=40, message="Converting to ONNX and verifying it")
        conversion = convert_and_verify(
            estimator, signature["columns"], frame,
            classifier=kind == OutputKind.CLASSIFICATION, source=source,
        )
        fields: dict[str, Any] = {
            "status": VersionStatus.READY, "status_message": "", "signature": signature,
            "output_kind": kind, "classes": classes, "verification": conversion.verification,
            "checked_at": timezone.now(), "example": example,
        }
        if conversion.ok:
            import hashlib

            storage = artifact_storage()
            name = storage.save(
                f"models/{version.model.project_id}/{version.model_id}/{version.version}-{uuid.uuid4().hex}.onnx",
                ContentFile(conversion.onnx),
            )
            signature["input_mode"] = conversion.input_mode
            signature["onnx_fills"] = conversion.fills
            signature["onnx_probabilities"] = conversion.probabilities
            fields.update(
                runtime=Runtime.ONNX, runtime_reason="The ONNX export gives scikit-learn's answers on "
                f"{conversion.verification['rows']} held-out rows.",
                onnx_storage_name=name, onnx_sha256=hashlib.sha256(conversion.onnx).hexdigest(),
                onnx_size=len(conversion.onnx),
            )
        else:
            fields.update(runtime=Runtime.SKLEARN, runtime_reason=conversion.reason)
        # Guarded: a second run of the same job must not overwrite the first one's result.
        with transaction.atomic():
            jobs.job_guard(job=job)
            updated = ModelVersion.objects.filter(
                pk=version.pk, status=VersionStatus.PENDING_CHECKS
            ).update(**fields)
            if updated:
                _status_changed_on_commit(version.pk, VersionStatus.PENDING_CHECKS)
        return {"status": "ready" if updated else "already checked", "runtime": fields["runtime"]}

    jobs.job_run(job_id=job_id, work=work)


# --- Trusting pickles -----------------------------------------------------------------------


def trusted_hash_permission_check(*, user) -> None:
    """Refuse unless this server loads pickles at all and ``user`` is an instance administrator."""
    if not settings.ALLOW_PICKLE_MODELS:
        raise PickleModelsOff()
    if not (user.is_staff and user.is_active):
        raise PermissionDenied(
            "Only an instance administrator (staff) can trust a pickle or joblib file: loading one runs "
            "whatever code it carries, so a project role is not enough."
        )


def trusted_hash_add(*, project: Project, sha256: Any, user, note: str = "") -> TrustedModelHash:
    """An instance administrator vouches for one exact pickle/joblib file in a project.

    Never a project owner's decision: anyone may own a project, and a trusted
    pickle runs its code in the web and worker processes. The project's pending
    versions of that file are checked again.
    """
    trusted_hash_permission_check(user=user)
    if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256.lower()):
        raise ValidationError({"sha256": "Must be 64 hexadecimal characters."})
    sha256 = sha256.lower()
    with transaction.atomic():
        trusted, created = TrustedModelHash.objects.select_for_update().get_or_create(
            project=project, sha256=sha256,
            defaults={"trusted_by": user, "note": (note or "")[:500]},
        )
        by = trusted.trusted_by
        # A row recorded by someone whose trust does not count (an owner, before trusting became an
        # administrator's decision, or an administrator no longer) is replaced by this decision;
        # an administrator's standing decision is kept as it is.
        replaced = not created and not (by is not None and by.is_staff and by.is_active)
        if replaced:
            trusted.trusted_by, trusted.trusted_at, trusted.note = user, timezone.now(), (note or "")[:500]
            trusted.save(update_fields=["trusted_by", "trusted_at", "note"])
        if created or replaced:
            pickle_hash_trusted.send(sender=TrustedModelHash, trust=trusted, user=user)
            audit_record(
                action="pickle_hash.trusted", actor=user, object_type="registry.TrustedModelHash",
                object_id=trusted.pk, project_id=project.pk,
                before={} if created else {"trusted_by": by.get_username() if by else None},
                after={"sha256": sha256, "note": trusted.note},
            )
        pending = ModelVersion.objects.select_related("model__project").filter(
            model__project=project, sha256=sha256, status=VersionStatus.PENDING_CHECKS,
            model_format__in=[ModelFormat.PICKLE, ModelFormat.JOBLIB],
        )
        for version in pending:
            _check_enqueue(version=version, user=user)
    return trusted


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


# --- Batch scoring --------------------------------------------------------------------------

BATCH_JOB_KIND = "batch_score"
BATCH_CHUNK_ROWS = 10_000


def batch_score_start(*, version: ModelVersion, dataset_version: DatasetVersion, user) -> Job:
    """Queue a job that scores every row of a dataset version with a model version."""
    from django.conf import settings

    from core.errors import PayloadTooLarge

    if dataset_version.dataset.project_id != version.model.project_id:
        raise NotFound("No such dataset version in this project.")
    if version.status != VersionStatus.READY:
        raise Conflict(f"Version {version.version} is {version.get_status_display()}; only a ready "
                       "version can score data.")
    limit = settings.BATCH_SCORE_MAX_ROWS
    if dataset_version.row_count > limit:
        raise PayloadTooLarge(f"{dataset_version} has {dataset_version.row_count} rows; batch scoring "
                              f"takes at most {limit}.")
    missing = [c["name"] for c in version.columns if dataset_version.column(c["name"]) is None]
    if missing:
        raise ValidationError({"dataset_version": f"{dataset_version} lacks the model's columns: "
                                                  f"{', '.join(missing[:10])}."})
    return jobs.job_create(
        kind=BATCH_JOB_KIND, project=version.model.project, user=user,
        params={"model_version_id": version.pk, "dataset_version_id": dataset_version.pk},
    )


def batch_score_compute(*, job_id: int) -> None:
    """Job body: score a dataset version in chunks and store ids + predictions as a new dataset version."""
    import io

    import numpy as np
    import pandas as pd

    from datasets.services import dataset_version_create, version_read_frame
    from registry import serving

    def work(job: Job) -> dict:
        version = ModelVersion.objects.select_related("model__project").filter(
            pk=job.params.get("model_version_id")).first()
        data_version = DatasetVersion.objects.select_related("dataset").filter(
            pk=job.params.get("dataset_version_id")).first()
        if version is None or data_version is None:
            raise ValidationError({"params": "The model version or the dataset version no longer exists."})
        if version.status != VersionStatus.READY:
            raise ValidationError({"model_version": f"Version {version.version} is not ready."})
        jobs.job_progress(job=job, progress=2, message="Loading the model")
        try:
            predictor = serving.predictor_get(version)
        except Exception as exc:  # noqa: BLE001 - e.g. a refused load; the job says why
            raise ValidationError({"model_version": str(getattr(exc, "detail", exc))}) from None
        ids = [c["name"] for c in data_version.columns if c.get("role") == "id"]
        names = [c["name"] for c in version.columns]
        frame = version_read_frame(data_version, columns=list(dict.fromkeys(ids + names)))
        total = len(frame)
        parts = []
        for start in range(0, total, BATCH_CHUNK_ROWS):
            chunk = frame.iloc[start:start + BATCH_CHUNK_ROWS]
            rows = sig.example_coerce(sig.example_from_frame(chunk[names], rows=len(chunk)), version.columns)
            values = {n: [row[i] for row in rows["data"]] for i, n in enumerate(names)}
            try:
                parsed = sig.columns_check(values, version.columns, len(chunk))
            except ValidationError as exc:
                field, message = next(iter(exc.message_dict.items()))
                # Row numbers in the message are within the chunk; name the dataset row.
                raise ValidationError({field: f"{message} (dataset rows {start}-{start + len(chunk) - 1})"}) \
                    from None
            labels, probabilities = predictor.predict(parsed)
            if ids:
                out = chunk[ids].reset_index(drop=True)
            else:
                out = pd.DataFrame({"row": range(start, start + len(chunk))})
            out["prediction"] = labels
            if probabilities is not None:
                for j, cls in enumerate(predictor.classes):
                    out[f"probability_{cls}"] = probabilities[:, j].astype(np.float64)
            parts.append(out)
            done = start + len(chunk)
            jobs.job_progress(job=job, progress=5 + 85 * done // max(total, 1),
                              message=f"Scored {done} of {total} rows")
        scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"prediction": []})
        buffer = io.BytesIO()
        scored.to_parquet(buffer, index=False)
        size = buffer.tell()
        buffer.seek(0)
        jobs.job_progress(job=job, progress=95, message="Storing the scores as a dataset version")
        with transaction.atomic():
            jobs.job_guard(job=job)
            created = dataset_version_create(
                project=version.model.project, name=f"{version.model.name}-scores", stream=buffer,
                user=job.created_by, content_length=size, filename=f"{data_version.dataset.name}.parquet",
                fmt="parquet",
                description=f"{version.model.name} v{version.version} ({predictor.runtime}) scored "
                            f"{data_version.dataset.name} v{data_version.version}.",
                # The id columns are copied from the scored data: what was PII there is PII here.
                pii_columns=[n for n in ids if (data_version.column(n) or {}).get("pii")],
            )
        return {"dataset_version_id": created.version.pk, "dataset": created.version.dataset.name,
                "version": created.version.version, "rows": total, "runtime": predictor.runtime,
                "model_version": version.version, "input_dataset_version_id": data_version.pk}

    jobs.job_run(job_id=job_id, work=work)
