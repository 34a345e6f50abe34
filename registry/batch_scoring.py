"""Batch scoring: a model version's predictions for every row of a dataset version, as a job.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from core import jobs
from core.errors import Conflict, NotFound
from core.models import Job
from datasets.models import DatasetVersion
from registry import signature as sig
from registry.models import (
    ModelVersion,
    VersionStatus,
)

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
