"""Datasets: content-addressed versions, column roles, profiles, validation rules and lineage.

An upload is streamed to storage while it is hashed, then read back once in a
streaming pass (``dataset_files.inspect_file``) for its schema. Only a file
that passes becomes a version; anything else deletes the blob and raises a
ValidationError, so no half-made version is ever visible.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from accounts.json_input import check_json_value
from accounts.models import Project, Role
from accounts.permissions import project_for_user, require_role
from accounts.selectors import pii_hidden, pii_mask_rows
from core import jobs
from core.audit import audit_record
from core.errors import Conflict, NotFound
from core.models import Job
from datasets import files as dataset_files
from datasets.models import (
    ColumnRole,
    Dataset,
    DatasetVersion,
    LineageDirection,
    RunDataset,
    ValidationRule,
    ValidationRuleKind,
)
from experiments import artifacts
from experiments.models import Run

DATASET_NAME_MAX = 200
PREVIEW_MAX_ROWS = 100


def max_dataset_bytes() -> int:
    return getattr(settings, "MAX_DATASET_BYTES", settings.MAX_ARTIFACT_BYTES)


# --- storage -------------------------------------------------------------------------------


def _storage():
    return artifacts.artifact_storage()


@contextlib.contextmanager
def local_path(storage_name: str) -> Iterator[str]:
    """A filesystem path for a stored blob: the file itself on local storage, a temp copy otherwise."""
    storage = _storage()
    try:
        yield storage.path(storage_name)
        return
    except NotImplementedError:
        pass
    blob = artifacts._blob_open(storage, storage_name)
    with tempfile.NamedTemporaryFile(prefix="steward-dataset-", delete=False) as tmp:
        try:
            shutil.copyfileobj(blob, tmp, artifacts.CHUNK_SIZE)
        finally:
            blob.close()
    try:
        yield tmp.name
    finally:
        os.unlink(tmp.name)


def version_path(version: DatasetVersion):
    return local_path(version.storage_name)


def version_read_frame(version: DatasetVersion, columns: list[str] | None = None):
    with version_path(version) as path:
        table = dataset_files.read_table(
            path, fmt=version.format, read_options=version.read_options,
            columns=version.columns, include=columns,
        )
    return dataset_files.to_pandas(table)


# --- reads with permission -----------------------------------------------------------------


def dataset_for_user(user, slug: str, name: str, min_role: Role = Role.VIEWER) -> Dataset:
    project = project_for_user(user, slug, min_role=min_role)
    dataset = Dataset.objects.filter(project=project, name=name).first()
    if dataset is None:
        raise NotFound("No such dataset.")
    return dataset


def dataset_version_for_user(user, version_id, min_role: Role = Role.VIEWER) -> DatasetVersion:
    try:
        version = DatasetVersion.objects.select_related("dataset__project").get(pk=int(version_id))
    except (DatasetVersion.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such dataset version.") from None
    require_role(user, version.dataset.project, min_role)
    return version


# --- upload --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionCreated:
    version: DatasetVersion
    created: bool


def _name_clean(name: Any) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > DATASET_NAME_MAX:
        raise ValidationError({"name": f"Give a dataset name of 1-{DATASET_NAME_MAX} characters."})
    if "/" in name or "\x00" in name:
        raise ValidationError({"name": "A dataset name must not contain '/' or NUL."})
    return name


def _carry_roles(columns: list[dict[str, Any]], previous: DatasetVersion | None,
                 pii_columns: frozenset[str]) -> list[dict[str, Any]]:
    """New columns are features; a column the previous version had keeps its role and PII flag."""
    before = {c["name"]: c for c in (previous.columns if previous else [])}
    for col in columns:
        old = before.get(col["name"], {})
        col["role"] = old.get("role", ColumnRole.FEATURE.value)
        col["pii"] = bool(old.get("pii", False)) or col["name"] in pii_columns
    return columns


def dataset_version_create(
    *,
    project: Project,
    name: str,
    stream: IO[bytes],
    user,
    content_length: int | None = None,
    filename: str = "",
    fmt: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    description: str = "",
    pii_columns: Iterable[str] = (),
) -> VersionCreated:
    """Store an uploaded CSV/Parquet as a new version, or return the version with the same content.

    ``pii_columns`` are flagged PII from the start (a file derived from PII data).
    """
    name = _name_clean(name)
    if fmt is not None and fmt not in ("csv", "parquet"):
        raise ValidationError({"format": "Must be 'csv' or 'parquet'."})
    # Checked before a byte of the upload is stored.
    delimiter = dataset_files.delimiter_clean(delimiter)
    if encoding is not None:
        encoding = dataset_files.encoding_clean(encoding)
    storage = _storage()
    blob = artifacts.blob_write(
        stream, name_prefix=f"datasets/{project.pk}/", max_bytes=max_dataset_bytes(),
        content_length=content_length, what="file",
    )
    keep = False
    try:
        existing = DatasetVersion.objects.filter(
            dataset__project=project, dataset__name=name, sha256=blob.sha256
        ).select_related("dataset").first()
        if existing is not None:
            return VersionCreated(existing, False)
        with local_path(blob.storage_name) as path:
            summary = dataset_files.inspect_file(
                path, size=blob.size, fmt=fmt, filename=filename, delimiter=delimiter, encoding=encoding
            )
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                project=project, name=name, defaults={"created_by": user, "description": description}
            )
            # The lock serialises version numbers per dataset.
            dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
            same = dataset.versions.filter(sha256=blob.sha256).first()
            if same is not None:
                return VersionCreated(same, False)
            previous = dataset.versions.order_by("-version").first()
            version = DatasetVersion.objects.create(
                dataset=dataset,
                version=(previous.version + 1) if previous else 1,
                sha256=blob.sha256,
                storage_name=blob.storage_name,
                format=summary.format,
                read_options=summary.read_options,
                original_name=(filename or "")[:255],
                size=blob.size,
                row_count=summary.row_count,
                column_count=len(summary.columns),
                columns=_carry_roles(summary.columns, previous, frozenset(pii_columns)),
                created_by=user,
            )
            version.profile_job = jobs.job_create(
                kind="dataset_profile", project=project, user=user,
                params={"dataset_version_id": version.pk},
            )
            if dataset.rules.exists():
                version.validation_job = jobs.job_create(
                    kind="dataset_validate", project=project, user=user,
                    params={"dataset_version_id": version.pk},
                )
            version.save(update_fields=["profile_job", "validation_job"])
        keep = True
        return VersionCreated(version, True)
    except IntegrityError:
        # A concurrent upload of the same content (or the same new dataset) won.
        existing = DatasetVersion.objects.filter(
            dataset__project=project, dataset__name=name, sha256=blob.sha256
        ).first()
        if existing is None:
            raise
        return VersionCreated(existing, False)
    finally:
        if not keep:
            artifacts._blob_delete(storage, blob.storage_name)


def dataset_columns_update(*, version: DatasetVersion, changes: Any) -> DatasetVersion:
    """Set roles and PII flags: ``{"col": {"role": "target", "pii": true}, ...}``."""
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"columns": "Give an object of column name -> {role, pii}."})
    roles = set(ColumnRole.values)
    with transaction.atomic():
        version = DatasetVersion.objects.select_for_update().get(pk=version.pk)
        by_name = {c["name"]: c for c in version.columns}
        for name, change in changes.items():
            where = f"columns.{name}"
            if name not in by_name:
                raise ValidationError({where: "No such column in this version."})
            if not isinstance(change, dict) or not set(change) <= {"role", "pii"} or not change:
                raise ValidationError({where: "Give {role, pii}."})
            if "role" in change:
                if change["role"] not in roles:
                    raise ValidationError({f"{where}.role": f"Must be one of {', '.join(sorted(roles))}."})
                by_name[name]["role"] = change["role"]
            if "pii" in change:
                if not isinstance(change["pii"], bool):
                    raise ValidationError({f"{where}.pii": "Must be true or false."})
                by_name[name]["pii"] = change["pii"]
        targets = [c["name"] for c in version.columns if c["role"] == ColumnRole.TARGET]
        if len(targets) > 1:
            raise ValidationError(
                {"columns": f"Only one column can be the target (got {', '.join(targets)})."}
            )
        version.save(update_fields=["columns"])
    return version


def dataset_version_preview(*, version: DatasetVersion, user, rows: int = 20) -> dict[str, Any]:
    """The first rows; PII columns are masked for anyone below editor."""
    rows = max(1, min(int(rows), PREVIEW_MAX_ROWS))
    with version_path(version) as path:
        data = dataset_files.read_head(
            path, fmt=version.format, read_options=version.read_options, columns=version.columns, rows=rows
        )
    hidden = pii_hidden(user, version.dataset.project, version.columns)
    names = [c["name"] for c in version.columns]
    out = pii_mask_rows(([_jsonable(v) for v in row] for row in data), names, hidden)
    return {"columns": names, "rows": out, "hidden_columns": [n for n in names if n in hidden]}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:
            return None
        return value
    return str(value)


# --- profile & validation jobs -------------------------------------------------------------


def dataset_profile_start(*, version: DatasetVersion, user) -> Job:
    with transaction.atomic():
        job = jobs.job_create(kind="dataset_profile", project=version.dataset.project, user=user,
                              params={"dataset_version_id": version.pk})
        DatasetVersion.objects.filter(pk=version.pk).update(profile_job=job)
    return job


def dataset_validate_start(*, version: DatasetVersion, user) -> Job:
    with transaction.atomic():
        job = jobs.job_create(kind="dataset_validate", project=version.dataset.project, user=user,
                              params={"dataset_version_id": version.pk})
        DatasetVersion.objects.filter(pk=version.pk).update(validation_job=job)
    return job


def _job_version(job: Job) -> DatasetVersion:
    version = DatasetVersion.objects.select_related("dataset").filter(
        pk=job.params.get("dataset_version_id")
    ).first()
    if version is None:
        raise ValidationError({"dataset_version_id": "The dataset version no longer exists."})
    return version


def dataset_profile_compute(*, job_id: int) -> None:
    """Job body: per-column statistics, label distribution and sensitive-group counts."""
    from datasets import profile as dataset_profile

    def work(job: Job) -> dict[str, Any]:
        version = _job_version(job)
        jobs.job_progress(job=job, progress=2, message="Reading the file",
                          log=f"Reading {version} ({version.size} bytes)\n")
        df = version_read_frame(version)
        jobs.job_progress(job=job, progress=20, message="Profiling columns",
                          log=f"Read {len(df)} rows x {len(df.columns)} columns\n")

        def report(done: int, total: int) -> None:
            jobs.job_progress(job=job, progress=20 + 75 * done // max(1, total),
                              message=f"Profiled {done} of {total} columns")

        profile = dataset_profile.profile_frame(df, version.columns, progress=report)
        with transaction.atomic():
            jobs.job_guard(job=job)
            DatasetVersion.objects.filter(pk=version.pk).update(profile=profile)
        return {"dataset_version_id": version.pk, "columns": len(profile["columns"])}

    jobs.job_run(job_id=job_id, work=work)


def dataset_validate_compute(*, job_id: int) -> None:
    """Job body: evaluate the dataset's rules on one version and store the report."""
    from datasets import profile as dataset_profile

    def work(job: Job) -> dict[str, Any]:
        version = _job_version(job)
        rules = list(version.dataset.rules.all())
        previous = version.dataset.versions.filter(version__lt=version.version).order_by("-version").first()
        jobs.job_progress(job=job, progress=5, message="Reading the file")
        df = version_read_frame(version)
        jobs.job_progress(job=job, progress=40, message=f"Checking {len(rules)} rules")
        report = dataset_profile.validate_frame(df, version.columns, rules, previous)
        report["version"] = version.version
        with transaction.atomic():
            jobs.job_guard(job=job)
            DatasetVersion.objects.filter(pk=version.pk).update(validation=report)
        failed = sum(1 for r in report["rules"] if not r["passed"])
        jobs.job_progress(job=job, progress=95, message="Report stored",
                          log=f"{len(rules)} rules, {failed} failed\n")
        return {"dataset_version_id": version.pk, "passed": report["passed"], "failed_rules": failed}

    jobs.job_run(job_id=job_id, work=work)


# --- validation rules ----------------------------------------------------------------------


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError({field: "Must be a number."})
    return value


def validation_rule_create(*, dataset: Dataset, kind: Any, column: Any = "", config: Any = None,
                           user=None) -> ValidationRule:
    if kind not in ValidationRuleKind.values:
        raise ValidationError({"kind": f"Must be one of {', '.join(ValidationRuleKind.values)}."})
    config = config or {}
    if not isinstance(config, dict):
        raise ValidationError({"config": "Must be an object."})
    check_json_value(config, field="config")
    column = column or ""
    if not isinstance(column, str):
        raise ValidationError({"column": "Must be a column name."})
    if kind == ValidationRuleKind.SCHEMA_UNCHANGED:
        if column:
            raise ValidationError({"column": "schema_unchanged applies to the whole file; give no column."})
        config = {}
    else:
        if not column:
            raise ValidationError({"column": f"A {kind} rule needs a column."})
        latest = dataset.versions.order_by("-version").first()
        if latest is not None and latest.column(column) is None:
            raise ValidationError({"column": f"The latest version has no column {column!r}."})
    if kind == ValidationRuleKind.RANGE:
        unknown = set(config) - {"min", "max"}
        if unknown:
            raise ValidationError({"config": f"Unknown key {sorted(unknown)[0]!r}; give min and/or max."})
        lo, hi = _number(config.get("min"), "config.min"), _number(config.get("max"), "config.max")
        if lo is None and hi is None:
            raise ValidationError({"config": "A range rule needs min, max or both."})
        if lo is not None and hi is not None and lo > hi:
            raise ValidationError({"config.min": "min is greater than max."})
        config = {"min": lo, "max": hi}
    elif kind == ValidationRuleKind.ALLOWED_VALUES:
        values = config.get("values")
        if set(config) != {"values"} or not isinstance(values, list) or not values:
            raise ValidationError({"config.values": "Give a non-empty list of allowed values."})
        if not all(isinstance(x, (str, int, float, bool)) for x in values):
            raise ValidationError({"config.values": "Allowed values are strings or numbers."})
        config = {"values": values}
    elif config and kind != ValidationRuleKind.SCHEMA_UNCHANGED:
        raise ValidationError({"config": f"A {kind} rule takes no config."})
    return ValidationRule.objects.create(dataset=dataset, kind=kind, column=column, config=config,
                                         created_by=user)


def validation_rule_delete(*, rule: ValidationRule) -> None:
    rule.delete()


# --- lineage -------------------------------------------------------------------------------


def run_dataset_link(*, run: Run, version: DatasetVersion, direction: str, role: str = "") -> RunDataset:
    if direction not in LineageDirection.values:
        raise ValidationError({"direction": "Must be 'input' or 'output'."})
    if not isinstance(role, str) or len(role) > 50:
        raise ValidationError({"role": "At most 50 characters."})
    if version.dataset.project_id != run.project_id:
        raise ValidationError({"dataset_version": "The dataset version belongs to another project."})
    try:
        with transaction.atomic():
            link, _ = RunDataset.objects.get_or_create(
                run=run, dataset_version=version, direction=direction, role=role
            )
    except IntegrityError:
        link = RunDataset.objects.get(run=run, dataset_version=version, direction=direction, role=role)
    return link


def dataset_version_delete(*, version: DatasetVersion, user) -> None:
    """Delete a dataset version and its file, unless a model version was trained on it.

    Runs that read it lose the lineage link; the refusal names the model versions.
    """
    storage_name = version.storage_name
    label = f"{version.dataset.name} v{version.version}"
    try:
        with transaction.atomic():
            audit_record(action="dataset_version.delete", actor=user, object_type="dataset_version",
                         object_id=version.pk, project_id=version.dataset.project_id,
                         before={"dataset": version.dataset.name, "version": version.version,
                                 "sha256": version.sha256}, after=None)
            version.delete()
    except ProtectedError as exc:
        used_by = sorted({str(obj) for obj in exc.protected_objects})
        raise Conflict(f"{label} cannot be deleted: model version(s) {', '.join(used_by[:10])} were trained "
                       "on it. Delete those versions first.") from None
    # Two uploads of one file share nothing: each version has a blob of its own.
    transaction.on_commit(lambda: artifacts.blob_delete(artifacts.artifact_storage(), storage_name))
