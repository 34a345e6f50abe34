"""Monitoring's write paths: monitors, ingestion of labels and outside predictions, drift and
performance reports (a background job), alerts and their delivery, retraining."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import tempfile
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Project
from accounts.selectors import pii_columns
from core import jobs
from core.audit import audit_record
from core.models import Job
from core.webhooks import WebhookRefused, webhook_send, webhook_url_check
from datasets.models import DatasetVersion
from monitoring import drift, signals
from monitoring.models import (
    DEFAULT_THRESHOLDS,
    Alert,
    AlertDelivery,
    AlertKind,
    AlertStatus,
    DeliveryChannel,
    Label,
    Monitor,
    MonitorReport,
    ReportStatus,
    RetrainData,
    Retraining,
)
from monitoring.windows import DatasetColumns, Window, reference_for, window_read
from registry import services as registry_services
from registry.models import ModelAlias, ModelVersion, OutputKind, PredictionLog, RegisteredModel
from registry.prediction_log import Entry, prediction_log_write
from registry.services import alias_name_clean

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

MAX_RECORDS = 10_000  # labels or predictions per ingestion request
WINDOW_MAX = 10_000_000
SCHEDULE_MAX_MINUTES = 7 * 24 * 60
PERFORMANCE_BUCKETS = 10
DRIFT_THREADS = 2
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "r2": True, "rmse": False, "mae": False}


# --- monitors ------------------------------------------------------------------------------


def _positive(value: Any, field: str, maximum: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError({field: f"Give a whole number from 1 to {maximum}."})
    return value


def _thresholds_clean(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError({"thresholds": "Give an object of threshold names and numbers."})
    clean: dict[str, float] = {}
    for name, number in value.items():
        field = f"thresholds.{name}"
        if name not in DEFAULT_THRESHOLDS:
            raise ValidationError(
                {field: f"Unknown threshold; known: {', '.join(sorted(DEFAULT_THRESHOLDS))}."}
            )
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float)
            or not np.isfinite(number)
            or number < 0
        ):
            raise ValidationError({field: "Give a number of 0 or more."})
        if name in ("significance", "drift_share") and not 0 < number <= 1:
            raise ValidationError({field: "Give a number above 0 and at most 1."})
        clean[name] = float(number)
    return clean


def _emails_clean(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 20:
        raise ValidationError({"alert_emails": "Give a list of up to 20 addresses."})
    for address in value:
        try:
            if not isinstance(address, str):
                raise ValidationError("")
            validate_email(address)
        except ValidationError:
            raise ValidationError(
                {"alert_emails": f"Not an email address: {str(address)[:100]!r}."}
            ) from None
    return value


def _webhook_clean(url: Any, secret: Any) -> tuple[str, str]:
    if url in (None, ""):
        return "", ""
    if not isinstance(url, str) or len(url) > 500:
        raise ValidationError({"webhook_url": "Give a URL of up to 500 characters."})
    try:
        webhook_url_check(url)
    except WebhookRefused as exc:
        raise ValidationError({"webhook_url": str(exc)}) from None
    if not isinstance(secret, str) or not 16 <= len(secret) <= 128:
        raise ValidationError({"webhook_secret": "Give a shared secret of 16-128 characters to sign with."})
    return url, secret


def _features_clean(value: Any, version: ModelVersion | None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > 1000:
        raise ValidationError({"features": "Give a list of column names."})
    if version is not None and version.columns:
        known = {c["name"] for c in version.columns}
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValidationError({"features": f"Not input columns of the model: {', '.join(unknown[:10])}."})
    return list(dict.fromkeys(value))


def _retrain_data_clean(value: Any) -> str:
    if value in (None, ""):
        return RetrainData.NEWEST_DATASET_VERSION
    if value not in RetrainData.values:
        raise ValidationError({"retrain_data": f"Choose one of: {', '.join(RetrainData.values)}."})
    return value


def monitor_create(
    *,
    project: Project,
    model_name: Any,
    alias: Any,
    user,
    reference_dataset_version: DatasetVersion | None = None,
    features: Any = None,
    schedule_minutes: Any = None,
    window_hours: Any = None,
    window_predictions: Any = None,
    thresholds: Any = None,
    alert_emails: Any = None,
    webhook_url: Any = None,
    webhook_secret: Any = "",
    cooldown_minutes: Any = 60,
    retrain_on_alert: Any = False,
    retrain_data: Any = RetrainData.NEWEST_DATASET_VERSION,
) -> Monitor:
    if not isinstance(model_name, str) or not model_name:
        raise ValidationError({"model": "Name a registered model."})
    model = RegisteredModel.objects.filter(project=project, name=model_name).first()
    if model is None:
        raise ValidationError({"model": f"No model named {model_name[:100]!r} in this project."})
    alias = alias_name_clean(alias)
    target = ModelAlias.objects.filter(model=model, name=alias).select_related("version").first()
    if target is None:
        raise ValidationError({"alias": f"Model {model.name!r} has no alias {alias!r}."})
    if reference_dataset_version is not None and reference_dataset_version.dataset.project_id != project.pk:
        raise ValidationError({"reference_dataset_version": "No such dataset version in this project."})
    if reference_dataset_version is None and target.version.training_dataset_version_id is None:
        raise ValidationError(
            {
                "reference_dataset_version": (
                    f"Version {target.version.version} records no training dataset; "
                    "choose a reference dataset version."
                )
            }
        )
    if window_hours not in (None, "") and window_predictions not in (None, ""):
        raise ValidationError({"window": "Give a window in hours or in predictions, not both."})
    if not isinstance(retrain_on_alert, bool):
        raise ValidationError({"retrain_on_alert": "Give true or false."})
    url, secret = _webhook_clean(webhook_url, webhook_secret)
    fields = dict(
        reference_dataset_version=reference_dataset_version,
        features=_features_clean(features, target.version),
        schedule_minutes=_positive(schedule_minutes, "schedule_minutes", SCHEDULE_MAX_MINUTES),
        window_hours=_positive(window_hours, "window_hours", 24 * 366),
        window_predictions=_positive(window_predictions, "window_predictions", WINDOW_MAX),
        thresholds=_thresholds_clean(thresholds),
        alert_emails=_emails_clean(alert_emails),
        webhook_url=url,
        webhook_secret=secret,
        cooldown_minutes=_positive(cooldown_minutes, "cooldown_minutes", 30 * 24 * 60) or 0,
        retrain_on_alert=retrain_on_alert,
        retrain_data=_retrain_data_clean(retrain_data),
    )
    try:
        with transaction.atomic():
            monitor = Monitor.objects.create(
                project=project, model=model, alias=alias, created_by=user, **fields
            )
            _schedule_sync(monitor)
            audit_record(
                action="monitor.created",
                actor=user,
                object_type="monitor",
                object_id=monitor.pk,
                project_id=project.pk,
                after={"model": model.name, "alias": alias},
            )
    except IntegrityError:
        raise ValidationError({"alias": f"{model.name}@{alias} already has a monitor."}) from None
    return monitor


UPDATABLE = (
    "features",
    "schedule_minutes",
    "window_hours",
    "window_predictions",
    "thresholds",
    "alert_emails",
    "webhook_url",
    "webhook_secret",
    "cooldown_minutes",
    "retrain_on_alert",
    "retrain_data",
)


def monitor_update(*, monitor: Monitor, changes: Any, user) -> Monitor:
    """Change a monitor's settings; what is not given stays. The same checks as at creation."""
    if not isinstance(changes, dict) or not changes:
        raise ValidationError({"body": "Give an object of the settings to change."})
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: f"Cannot be changed; changeable: {', '.join(UPDATABLE)}."})
    alias = (
        ModelAlias.objects.filter(model=monitor.model, name=monitor.alias).select_related("version").first()
    )
    before = {name: getattr(monitor, name) for name in UPDATABLE if name != "webhook_secret"}
    if "features" in changes:
        monitor.features = _features_clean(changes["features"], alias.version if alias else None)
    for name, maximum in (
        ("schedule_minutes", SCHEDULE_MAX_MINUTES),
        ("window_hours", 24 * 366),
        ("window_predictions", WINDOW_MAX),
    ):
        if name in changes:
            setattr(monitor, name, _positive(changes[name], name, maximum))
    if monitor.window_hours and monitor.window_predictions:
        raise ValidationError({"window": "Give a window in hours or in predictions, not both."})
    if "cooldown_minutes" in changes:
        monitor.cooldown_minutes = (
            _positive(changes["cooldown_minutes"], "cooldown_minutes", 30 * 24 * 60) or 0
        )
    if "thresholds" in changes:
        monitor.thresholds = {**(monitor.thresholds or {}), **_thresholds_clean(changes["thresholds"])}
    if "alert_emails" in changes:
        monitor.alert_emails = _emails_clean(changes["alert_emails"])
    if "webhook_url" in changes or "webhook_secret" in changes:
        monitor.webhook_url, monitor.webhook_secret = _webhook_clean(
            changes.get("webhook_url", monitor.webhook_url),
            changes.get("webhook_secret", monitor.webhook_secret),
        )
    if "retrain_on_alert" in changes:
        if not isinstance(changes["retrain_on_alert"], bool):
            raise ValidationError({"retrain_on_alert": "Give true or false."})
        monitor.retrain_on_alert = changes["retrain_on_alert"]
    if "retrain_data" in changes:
        monitor.retrain_data = _retrain_data_clean(changes["retrain_data"])
    with transaction.atomic():
        monitor.save()
        _schedule_sync(monitor)
        audit_record(
            action="monitor.updated",
            actor=user,
            object_type="monitor",
            object_id=monitor.pk,
            project_id=monitor.project_id,
            before=before,
            after={name: getattr(monitor, name) for name in before},
        )
    return monitor


def _schedule_sync(monitor: Monitor) -> None:
    """One django-celery-beat periodic task per scheduled monitor."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if not monitor.schedule_minutes:
        if monitor.periodic_task_id:
            PeriodicTask.objects.filter(pk=monitor.periodic_task_id).delete()
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=monitor.schedule_minutes, period=IntervalSchedule.MINUTES
    )
    task, _ = PeriodicTask.objects.update_or_create(
        name=f"monitor-{monitor.pk}",
        defaults={
            "task": "monitoring.tasks.monitor_scheduled_run_task",
            "interval": interval,
            "args": json.dumps([monitor.pk]),
            "enabled": True,
        },
    )
    if monitor.periodic_task_id != task.pk:
        monitor.periodic_task = task
        monitor.save(update_fields=["periodic_task"])


def monitor_delete(*, monitor: Monitor, user) -> None:
    with transaction.atomic():
        if monitor.periodic_task_id:
            monitor.schedule_minutes = None
            _schedule_sync(monitor)
        audit_record(
            action="monitor.deleted",
            actor=user,
            object_type="monitor",
            object_id=monitor.pk,
            project_id=monitor.project_id,
            before={"model": monitor.model.name, "alias": monitor.alias},
        )
        monitor.delete()


def monitor_run_start(*, monitor: Monitor, user) -> Job:
    return jobs.job_create(
        kind="drift_report", project=monitor.project, user=user, params={"monitor_id": monitor.pk}
    )


# --- ingestion -----------------------------------------------------------------------------


def _records(value: Any, field: str = "records") -> list[dict]:
    if isinstance(value, dict) and field in value:
        value = value[field]
    if not isinstance(value, list) or not value:
        raise ValidationError({field: "Give a non-empty list of records."})
    if len(value) > MAX_RECORDS:
        raise ValidationError({field: f"At most {MAX_RECORDS} records per request."})
    return value


def _request_id(value: Any, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value)) if isinstance(value, str | uuid.UUID) else uuid.UUID(int=-1)
    except ValueError:
        raise ValidationError(
            {field: "Give the request_id a prediction was answered with (a UUID)."}
        ) from None
    except (TypeError, OverflowError):
        raise ValidationError(
            {field: "Give the request_id a prediction was answered with (a UUID)."}
        ) from None


def labels_parse(value: Any) -> list[tuple[uuid.UUID, int, Any]]:
    records = _records(value, "labels")
    parsed: list[tuple[uuid.UUID, int, Any]] = []
    for i, record in enumerate(records):
        field = f"labels[{i}]"
        if (
            not isinstance(record, dict)
            or set(record) - {"request_id", "row", "label"}
            or "request_id" not in record
            or "label" not in record
        ):
            raise ValidationError({field: 'Give {"request_id", "row", "label"}.'})
        row = record.get("row", 0)
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < 1_000_000:
            raise ValidationError({f"{field}.row": "Give the row's position in its request (0 or more)."})
        label = record["label"]
        if (
            label is None
            or isinstance(label, dict | list)
            or (isinstance(label, float) and not np.isfinite(label))
        ):
            raise ValidationError({f"{field}.label": "Give a number, text or true/false."})
        if isinstance(label, str) and len(label) > 200:
            raise ValidationError({f"{field}.label": "At most 200 characters."})
        parsed.append((_request_id(record["request_id"], f"{field}.request_id"), row, label))
    return parsed


def labels_csv_parse(data: bytes) -> list[dict]:
    """A CSV with a header ``request_id,row,label`` (row optional); labels stay text unless numeric."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": "The CSV must be UTF-8."}) from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"request_id", "label"} <= set(reader.fieldnames):
        raise ValidationError({"file": "The CSV needs a header with request_id and label (and row)."})
    records = []
    for line in reader:
        label: Any = line.get("label")
        for cast in (int, float):
            try:
                label = cast(label)
                break
            except (TypeError, ValueError):
                continue
        row = line.get("row") or "0"
        try:
            row = int(row)
        except ValueError:
            raise ValidationError({"file": f"Line {reader.line_num}: row must be a whole number."}) from None
        records.append({"request_id": line.get("request_id"), "row": row, "label": label})
    return records


def labels_log(*, monitor: Monitor, labels: list[tuple[uuid.UUID, int, Any]]) -> dict[str, int]:
    """Store labels; a label already given for the same (request_id, row) is replaced (the
    newest answer wins), so sending a batch again changes nothing."""
    stored = Label.objects.bulk_create(
        [Label(monitor=monitor, request_id=rid, row=row, label=label) for rid, row, label in labels],
        update_conflicts=True,
        unique_fields=["monitor", "request_id", "row"],
        update_fields=["label"],
    )
    return {"labels": len(stored)}


def predictions_log(*, monitor: Monitor, records: Any) -> dict[str, Any]:
    """Predictions a model served elsewhere made, into the prediction log under the version the
    monitor's alias points at now. Each record: ``{"inputs": {column: value}, "prediction",
    "request_id"?}``; one record is one request of one row. A request_id already in the log for
    that version is skipped, so a retried batch is stored once."""
    items = _records(records)
    alias = ModelAlias.objects.filter(model=monitor.model, name=monitor.alias).first()
    if alias is None:
        raise ValidationError({"alias": f"{monitor.alias!r} no longer names a version."})
    names = [c["name"] for c in alias.version.columns if not c.get("pii") or monitor.model.log_pii]
    entries: list[Entry] = []
    seen: set[str] = set()
    for i, record in enumerate(items):
        field = f"records[{i}]"
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("inputs"), dict)
            or "prediction" not in record
        ):
            raise ValidationError({field: 'Give {"inputs": {...}, "prediction": ..., "request_id"?}.'})
        rid = (
            _request_id(record["request_id"], f"{field}.request_id")
            if record.get("request_id")
            else uuid.uuid4()
        )
        if rid.hex in seen:
            raise ValidationError({f"{field}.request_id": "Given twice in this batch."})
        seen.add(rid.hex)
        # Values are logged as sent, type errors included: the drift report counts them.
        inputs = {name: [record["inputs"].get(name)] for name in names}
        entries.append(
            Entry(
                version_id=alias.version_id,
                request_id=rid.hex,
                created_at=timezone.now(),
                rows=1,
                names=names,
                columns=inputs,
                predictions=[record["prediction"]],
            )
        )
    known = set(
        PredictionLog.objects.filter(
            model_version_id=alias.version_id, request_id__in=[uuid.UUID(e.request_id) for e in entries]
        ).values_list("request_id", flat=True)
    )
    fresh = [e for e in entries if uuid.UUID(e.request_id) not in known]
    # Written here, inside the request's transaction (not through serving's queue), so a
    # refused or retried request stores them exactly when it commits.
    if fresh:
        prediction_log_write(fresh)
    return {
        "predictions": len(fresh),
        "skipped": len(entries) - len(fresh),
        "request_ids": [e.request_id for e in entries],
    }


# --- the drift and performance report ------------------------------------------------------


def _feature_names(monitor: Monitor, version: ModelVersion | None) -> list[str]:
    if monitor.features:
        return list(monitor.features)
    if version is None:
        return []
    return [c["name"] for c in version.columns if not c.get("pii") or monitor.model.log_pii]


def _target_column(reference: DatasetVersion, version: ModelVersion | None) -> str | None:
    for column in reference.columns:
        if column.get("role") == "target":
            return column["name"]
    if version is not None:
        from training.models import TrainingRun

        record = TrainingRun.objects.filter(run_id=version.run_id).first()
        if record is not None:
            return record.spec.get("target")
    return None


def drift_compute(*, reference, current, features: list[str], thresholds, progress=None) -> dict[str, Any]:
    """Compare two column sources feature by feature; ``progress(done, total, name)`` after each.

    Two features are compared at a time, in threads: the sorts and merges that take the time
    run in NumPy without the GIL, and two columns of each side stay far below the memory of
    either whole frame. Progress is reported from this thread, in feature order.
    """
    results, quality, histograms = [], {}, {}

    def one(name: str) -> dict[str, Any]:
        return drift.feature_compare(
            name, reference.column(name), current.column(name), thresholds=thresholds
        )

    with ThreadPoolExecutor(max_workers=DRIFT_THREADS) as pool:
        # At most DRIFT_THREADS features in flight: map() would read every column up front.
        pending = deque()
        names = iter(features)
        for name in names:
            pending.append((name, pool.submit(one, name)))
            if len(pending) >= DRIFT_THREADS:
                break
        done = 0
        while pending:
            name, future = pending.popleft()
            out = future.result()
            following = next(names, None)
            if following is not None:
                pending.append((following, pool.submit(one, following)))
            done += 1
            result = out["result"]
            histograms[name] = result.pop("histogram")
            results.append(result)
            quality[name] = out["quality"]
            if progress is not None:
                progress(done, len(features), name)
    drifted = [r["feature"] for r in results if r["drifted"]]
    share = len(drifted) / len(results) if results else 0.0
    return {
        "features": results,
        "data_quality": {"features": quality},
        "histograms": histograms,
        "drift_share": round(share, 6),
        "dataset_drift": bool(results) and share >= thresholds("drift_share"),
        "drifted": drifted,
    }


def _metrics(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    if kind == OutputKind.REGRESSION:
        t, p = y_true.astype(float), y_pred.astype(float)
        out = {
            "rmse": float(np.sqrt(skm.mean_squared_error(t, p))),
            "mae": float(skm.mean_absolute_error(t, p)),
        }
        if len(t) > 1:
            out["r2"] = float(skm.r2_score(t, p))
        return out
    t, p = _same_kind(y_true, y_pred)
    out = {"accuracy": float(skm.accuracy_score(t, p))}
    labels = np.union1d(t, p)
    out["f1"] = float(
        skm.f1_score(
            t,
            p,
            average="binary" if len(labels) == 2 else "macro",
            pos_label=labels[-1] if len(labels) == 2 else 1,
            zero_division=0,
        )
    )
    return out


def _same_kind(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class labels as numbers when both sides are numbers (a label 1 is the prediction 1.0),
    else as text."""
    try:
        return y_true.astype(float), y_pred.astype(float)
    except (TypeError, ValueError):
        return y_true.astype(str), y_pred.astype(str)


def _baseline(version: ModelVersion | None, name: str) -> float | None:
    metrics = (version.metrics or {}) if version is not None else {}
    for key in (f"test_{name}", name, f"val_{name}", f"validation_{name}"):
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def labelled_rows(*, monitor: Monitor, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """The window's rows that have a label (positions, oldest first) and their labels."""
    positions: list[int] = []
    truth: list[Any] = []
    ids = list(window.requests)
    for start in range(0, len(ids), 5000):
        for rid, row, label in Label.objects.filter(
            monitor=monitor, request_id__in=ids[start : start + 5000]
        ).values_list("request_id", "row", "label"):
            offset, rows = window.requests[rid]
            if row < rows:
                positions.append(offset + row)
                truth.append(label)
    order = np.argsort(positions, kind="stable")
    return np.asarray(positions, dtype=np.int64)[order], np.asarray(truth, dtype=object)[order]


def performance_compute(*, monitor: Monitor, window: Window, version: ModelVersion | None) -> dict[str, Any]:
    """Metrics of the labelled predictions in the window against the version's metrics at
    registration, metrics per time bucket, and Page-Hinkley on the error stream."""
    if not window.requests or window.predictions is None:
        return {}
    idx, y_true = labelled_rows(monitor=monitor, window=window)
    if not len(idx):
        return {"labelled": 0}
    y_pred = window.predictions[idx]
    kind = (version.output_kind if version is not None else "") or (
        OutputKind.REGRESSION
        if window.predictions.dtype.kind == "f" and not np.all(np.mod(window.predictions, 1) == 0)
        else OutputKind.CLASSIFICATION
    )
    if kind == OutputKind.REGRESSION:
        try:
            y_true = y_true.astype(float)
        except (TypeError, ValueError):
            return {"labelled": len(idx), "error": "Labels of a regression model must be numbers."}
        errors = np.abs(y_true - y_pred.astype(float))
    else:
        y_true, y_pred = _same_kind(y_true, y_pred)
        errors = (y_true != y_pred).astype(float)
    current = _metrics(kind, y_true, y_pred)
    baseline = {name: _baseline(version, name) for name in current}
    drops: dict[str, float] = {}
    degraded = []
    for name, value in current.items():
        base = baseline[name]
        if base is None:
            continue
        # Higher-is-better metrics: the absolute drop; error metrics: the relative rise.
        drop = (base - value) if HIGHER_IS_BETTER[name] else (value - base) / max(abs(base), 1e-12)
        drops[name] = round(drop, 6)
        if drop > monitor.threshold("metric_drop"):
            degraded.append(name)
    buckets = []
    times = window.created[idx]
    for part in np.array_split(np.arange(len(idx)), min(PERFORMANCE_BUCKETS, len(idx))):
        if len(part):
            buckets.append(
                {
                    "time": dt.datetime.fromtimestamp(float(times[part[-1]]), tz=dt.UTC).isoformat(),
                    "rows": int(len(part)),
                    **_metrics(kind, y_true[part], y_pred[part]),
                }
            )
    concept = drift.page_hinkley(
        errors, delta=monitor.threshold("ph_delta"), threshold=monitor.threshold("ph_lambda")
    )
    return {
        "labelled": int(len(idx)),
        "task": kind,
        "metrics": current,
        "baseline": baseline,
        "drops": drops,
        "degraded": degraded,
        "over_time": buckets,
        "concept_drift": concept,
    }


def _prediction_summary(window: Window, reference: DatasetColumns, target: str | None, thresholds) -> dict:
    if window.predictions is None or not len(window.predictions):
        return {}
    out: dict[str, Any] = {"rows": int(len(window.predictions))}
    if target:
        compared = drift.feature_compare(
            "prediction", reference.column(target), window.predictions, thresholds=thresholds
        )["result"]
        out.update(compared=target, **compared)
    else:
        values = window.predictions
        if values.dtype.kind == "f":
            out.update(kind="numerical", mean=float(np.nanmean(values)), std=float(np.nanstd(values)))
        else:
            labels, counts = np.unique(values.astype(str), return_counts=True)
            out.update(
                kind="categorical",
                shares=dict(zip(labels.tolist(), (counts / counts.sum()).round(6).tolist(), strict=True)),
            )
    return out


def _job_monitor(job: Job) -> Monitor:
    monitor = (
        Monitor.objects.select_related("model", "project").filter(pk=job.params.get("monitor_id")).first()
    )
    if monitor is None:
        raise ValidationError({"monitor": "The monitor no longer exists."})
    return monitor


def drift_report_compute(*, job_id: int) -> None:
    jobs.job_run(job_id=job_id, work=_drift_report_work)


def _drift_report_work(job: Job) -> dict[str, Any]:
    started = time.monotonic()
    monitor = _job_monitor(job)
    alias = (
        ModelAlias.objects.filter(model=monitor.model, name=monitor.alias).select_related("version").first()
    )
    version = alias.version if alias else None
    reference_version = reference_for(monitor)
    if reference_version is None:
        raise ValidationError({"reference_dataset_version": "The monitor has no reference dataset."})
    in_reference = {c["name"] for c in reference_version.columns}
    wanted = _feature_names(monitor, version)
    # Features the reference does not hold cannot be compared: the report names them instead.
    features = [f for f in wanted if f in in_reference]
    not_in_reference = [f for f in wanted if f not in in_reference]
    jobs.job_progress(job=job, progress=2, message="Reading the current window")
    target = _target_column(reference_version, version)
    if target not in in_reference:
        target = None
    window = window_read(monitor, names=features)
    reference = DatasetColumns(reference_version, [*features, *([target] if target else [])])
    thresholds = monitor.threshold
    report = MonitorReport(
        monitor=monitor,
        job=job,
        model_versions=window.version_ids,
        reference_dataset_version=reference_version,
        window_start=window.start,
        window_end=window.end,
        reference_rows=reference.rows,
        current_rows=window.rows,
    )
    minimum = int(thresholds("min_samples"))
    if window.rows < minimum:
        report.status = ReportStatus.INSUFFICIENT
        report.data_quality = {
            "message": f"{window.rows} predictions in the window; at least {minimum} are "
            "needed for a verdict."
        }
    else:

        def progress(done: int, total: int, name: str) -> None:
            jobs.job_progress(job=job, progress=5 + int(80 * done / total), message=f"Compared {name}")

        found = drift_compute(
            reference=reference, current=window, features=features, thresholds=thresholds, progress=progress
        )
        report.features = found["features"]
        report.histograms = found["histograms"]
        report.drift_share = found["drift_share"]
        report.dataset_drift = found["dataset_drift"]
        report.status = ReportStatus.DRIFT if found["dataset_drift"] else ReportStatus.OK
        quality = found["data_quality"]
        per = quality["features"].values()
        quality.update(
            not_in_reference=not_in_reference,
            current_rows=window.rows,
            missing=sum(q["missing"] for q in per),
            type_errors=sum(q["type_errors"] for q in per),
            out_of_range=sum(q.get("out_of_range", 0) for q in per),
        )
        report.data_quality = quality
        report.prediction = _prediction_summary(window, reference, target, thresholds)
    reference.close()
    jobs.job_progress(job=job, progress=90, message="Performance against labels")
    report.performance = performance_compute(monitor=monitor, window=window, version=version)
    report.seconds = round(time.monotonic() - started, 3)
    with transaction.atomic():
        jobs.job_guard(job=job)
        report.save()
        opened = alerts_evaluate(report=report)
    for alert in opened:
        transaction.on_commit(lambda pk=alert.pk: alert_notify_enqueue(pk))
    return {
        "report_id": report.pk,
        "dataset_drift": report.dataset_drift,
        "drift_share": report.drift_share,
        "alerts": [a.pk for a in opened],
    }


# --- alerts --------------------------------------------------------------------------------


def _conditions(report: MonitorReport) -> dict[str, tuple[bool, str, dict]]:
    """kind -> (holds, message, details); a kind that cannot be judged from this report is left out."""
    out: dict[str, tuple[bool, str, dict]] = {}
    monitor = report.monitor
    if report.status != ReportStatus.INSUFFICIENT:
        drifted = [f["feature"] for f in report.features if f["drifted"]]
        out[AlertKind.DRIFT] = (
            report.dataset_drift,
            f"{monitor}: {len(drifted)} of {len(report.features)} features drifted "
            f"({report.drift_share:.0%}): {', '.join(drifted[:10])}",
            {"drifted": drifted, "drift_share": report.drift_share},
        )
    perf = report.performance or {}
    if perf.get("labelled", 0) >= monitor.threshold("min_samples") and "metrics" in perf:
        degraded = perf.get("degraded", [])
        concept = (perf.get("concept_drift") or {}).get("detected", False)
        parts = [
            f"{name} {perf['metrics'][name]:.4g} against {perf['baseline'][name]:.4g} at registration"
            for name in degraded
        ]
        if concept:
            parts.append("the error rate rose (Page-Hinkley)")
        out[AlertKind.PERFORMANCE] = (
            bool(degraded) or concept,
            f"{monitor}: " + "; ".join(parts),
            {"degraded": degraded, "concept_drift": concept},
        )
    return out


def alerts_evaluate(*, report: MonitorReport) -> list[Alert]:
    """Open, repeat or resolve alerts after a report; returns the alerts to notify about.

    At most one live alert per (monitor, kind): a condition that holds again updates it, and it
    is notified again only once its cool-down has passed. A condition that no longer holds
    resolves its live alert.
    """
    monitor = report.monitor
    now = timezone.now()
    notify: list[Alert] = []
    retrained = False
    for kind, (holds, message, details) in _conditions(report).items():
        live = (
            Alert.objects.select_for_update()
            .filter(monitor=monitor, kind=kind)
            .exclude(status=AlertStatus.RESOLVED)
            .first()
        )
        if holds and live is None:
            alert = Alert.objects.create(
                monitor=monitor,
                kind=kind,
                message=message,
                details=details,
                report=report,
                opened_at=now,
                last_seen_at=now,
            )
            notify.append(alert)
            # One retraining per report, even when drift and performance alerts open together.
            if (
                kind in (AlertKind.DRIFT, AlertKind.PERFORMANCE)
                and monitor.retrain_on_alert
                and not retrained
            ):
                retrained = True
                try:
                    with transaction.atomic():
                        extra = retraining_start(monitor=monitor, alert=alert)
                except ValidationError as exc:
                    # The recorded spec no longer holds (a column or dataset is gone): say so, once.
                    extra = None
                    if (
                        not Alert.objects.filter(monitor=monitor, kind=AlertKind.RETRAINING)
                        .exclude(status=AlertStatus.RESOLVED)
                        .exists()
                    ):
                        extra = Alert.objects.create(
                            monitor=monitor,
                            kind=AlertKind.RETRAINING,
                            opened_at=now,
                            last_seen_at=now,
                            message=f"{monitor}: retraining could not start: {'; '.join(exc.messages)}",
                        )
                if extra is not None:
                    notify.append(extra)
        elif holds:
            live.occurrences += 1
            live.last_seen_at = now
            live.message, live.details, live.report = message, details, report
            live.save(update_fields=["occurrences", "last_seen_at", "message", "details", "report"])
            cooldown = dt.timedelta(minutes=monitor.cooldown_minutes)
            if live.status == AlertStatus.OPEN and (
                live.notified_at is None or now - live.notified_at >= cooldown
            ):
                notify.append(live)
        elif live is not None:
            live.status, live.resolved_at = AlertStatus.RESOLVED, now
            live.save(update_fields=["status", "resolved_at"])
    return notify


def alert_acknowledge(*, alert: Alert, user) -> Alert:
    if alert.status != AlertStatus.OPEN:
        raise ValidationError({"status": f"The alert is {alert.status}; only an open alert is acknowledged."})
    alert.status, alert.acknowledged_by, alert.acknowledged_at = (
        AlertStatus.ACKNOWLEDGED,
        user,
        timezone.now(),
    )
    alert.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
    return alert


def alert_resolve(*, alert: Alert, user) -> Alert:
    if alert.status == AlertStatus.RESOLVED:
        raise ValidationError({"status": "The alert is already resolved."})
    alert.status, alert.resolved_at = AlertStatus.RESOLVED, timezone.now()
    alert.save(update_fields=["status", "resolved_at"])
    return alert


def alert_payload(alert: Alert) -> dict[str, Any]:
    monitor = alert.monitor
    return {
        "alert_id": alert.pk,
        "kind": alert.kind,
        "status": alert.status,
        "message": alert.message,
        "details": alert.details,
        "occurrences": alert.occurrences,
        "monitor_id": monitor.pk,
        "project": monitor.project.slug,
        "model": monitor.model.name,
        "alias": monitor.alias,
        "report_id": alert.report_id,
        "opened_at": alert.opened_at.isoformat(),
    }


def alert_notify_enqueue(alert_id: int) -> None:
    from monitoring.tasks import alert_notify_task

    alert_notify_task.delay(alert_id)


def alert_notify(*, alert_id: int) -> list[AlertDelivery]:
    """Email and webhook deliveries for an alert (in-app is the alert itself)."""
    alert = Alert.objects.select_related("monitor__project", "monitor__model").filter(pk=alert_id).first()
    if alert is None:
        return []
    now = timezone.now()
    cooled = now - dt.timedelta(minutes=alert.monitor.cooldown_minutes)
    # Claimed with a guarded update, so a task delivered twice sends once: an alert is notified
    # when it is new, or seen again since its last notice and that notice is past the cool-down.
    claimed = (
        Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN)
        .filter(Q(notified_at__isnull=True) | Q(notified_at__lt=F("last_seen_at"), notified_at__lte=cooled))
        .update(notified_at=now)
    )
    if not claimed:
        return []
    monitor = alert.monitor
    event = f"monitor.alert.{alert.kind}"
    deliveries = []
    if monitor.alert_emails:
        delivery = AlertDelivery.objects.create(
            alert=alert, channel=DeliveryChannel.EMAIL, target=", ".join(monitor.alert_emails), event=event
        )
        try:
            send_mail(
                subject=f"[Steward] {alert.kind} alert: {monitor}",
                message=alert.message,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=monitor.alert_emails,
            )
            delivery.delivered, delivery.delivered_at = True, timezone.now()
        except Exception as exc:  # noqa: BLE001 - a mail server's failure is recorded, not raised
            delivery.error = str(exc)[:2000]
        delivery.attempts = 1
        delivery.save()
        deliveries.append(delivery)
    if monitor.webhook_url:
        delivery = AlertDelivery.objects.create(
            alert=alert, channel=DeliveryChannel.WEBHOOK, target=monitor.webhook_url, event=event
        )
        deliveries.append(delivery)
        transaction.on_commit(lambda: _webhook_enqueue(delivery.pk))
    return deliveries


def _webhook_enqueue(delivery_id: int) -> None:
    from monitoring.tasks import alert_webhook_task

    alert_webhook_task.delay(delivery_id)


def alert_webhook_attempt(*, delivery_id: int) -> bool:
    """One attempt; True when delivered (or nothing is left to do), False to try again later."""
    delivery = (
        AlertDelivery.objects.select_related("alert__monitor__project", "alert__monitor__model")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.delivered:
        return True
    monitor = delivery.alert.monitor
    status = webhook_send(
        url=delivery.target,
        secret=monitor.webhook_secret,
        event=delivery.event,
        payload=alert_payload(delivery.alert),
    )
    delivery.attempts += 1
    delivery.status_code = status
    if status is not None and 200 <= status < 300:
        delivery.delivered, delivery.delivered_at, delivery.error = True, timezone.now(), ""
    else:
        delivery.error = f"HTTP {status}" if status is not None else "Unreachable or refused address"
    delivery.save()
    return delivery.delivered


# --- retraining ----------------------------------------------------------------------------


def retraining_start(*, monitor: Monitor, alert: Alert | None, user=None) -> Alert | None:
    """Queue a retraining of the alias's version from its recorded training spec, on the newest
    version of its dataset, or (``retrain_data``) on the reference plus the window's labelled
    predictions, which the job writes as a new dataset version. Returns a retraining alert when
    the version has no spec."""
    from training.models import TrainingRun

    alias = (
        ModelAlias.objects.filter(model=monitor.model, name=monitor.alias).select_related("version").first()
    )
    champion = alias.version if alias else None
    record = TrainingRun.objects.filter(run_id=champion.run_id).first() if champion else None
    if record is None:
        message = (
            f"{monitor}: retraining needs a training spec, and version "
            f"{champion.version if champion else '?'} was logged from a script. Train it with a "
            "training job (or register a version that was) to retrain automatically."
        )
        live = (
            Alert.objects.filter(monitor=monitor, kind=AlertKind.RETRAINING)
            .exclude(status=AlertStatus.RESOLVED)
            .first()
        )
        if live is not None:
            return None
        now = timezone.now()
        return Alert.objects.create(
            monitor=monitor,
            kind=AlertKind.RETRAINING,
            message=message,
            details={"version": champion.version if champion else None},
            opened_at=now,
            last_seen_at=now,
        )
    spec = dict(record.spec)
    spec["features"] = record.resolved_features or spec.get("features")
    from training.services import spec_clean

    if monitor.retrain_data == RetrainData.REFERENCE_PLUS_LABELLED:
        # Checked now so a monitor that cannot work this way says so in an alert, not a failed job.
        _retraining_reference_check(reference_for(monitor), spec.get("target"))
    else:
        base = DatasetVersion.objects.filter(pk=spec.get("dataset_version")).first()
        if base is not None:
            newest = base.dataset.versions.order_by("-version").first()
            spec["dataset_version"] = newest.pk
    clean, _ = spec_clean(project=monitor.project, spec=spec, user=user or monitor.created_by)
    retraining = Retraining.objects.create(monitor=monitor, alert=alert, champion=champion)
    job = jobs.job_create(
        kind="retraining",
        project=monitor.project,
        user=user or monitor.created_by,
        params={
            "experiment": f"retraining {monitor.model.name}"[:200],
            "spec": clean,
            "pii_left_out": [],
            "rerun_of": str(champion.run_id),
            "monitor_id": monitor.pk,
            "retraining_id": str(retraining.pk),
            "retrain_data": monitor.retrain_data,
        },
    )
    retraining.job = job
    retraining.save(update_fields=["job"])
    return None


def _retraining_reference_check(reference: DatasetVersion | None, target: Any) -> DatasetVersion:
    if reference is None:
        raise ValidationError({"retrain_data": "The monitor has no reference dataset to retrain on."})
    if not isinstance(target, str) or reference.column(target) is None:
        raise ValidationError(
            {
                "retrain_data": f"The reference {reference.dataset.name} v{reference.version} has no "
                f"target column {target!r}: it cannot take labelled predictions."
            }
        )
    return reference


def _labels_as(values: np.ndarray, dtype: str, target: str) -> pd.Series:
    """Labels in the reference target's type, so the classes stay what the champion learned."""
    import pandas as pd  # not at web start: only a retraining needs it

    labels = pd.Series(values, dtype=object)
    if dtype in ("int64", "float64"):
        try:
            numbers = pd.to_numeric(labels, errors="raise").astype(float)
        except (TypeError, ValueError):
            raise ValidationError(
                {"labels": f"The labels must be numbers, like the reference's {target!r}."}
            ) from None
        if dtype == "int64" and np.all(np.mod(numbers, 1) == 0):
            return numbers.astype("int64")
        return numbers
    if dtype == "bool":
        if not all(isinstance(v, bool) for v in values):
            raise ValidationError(
                {"labels": f"The labels must be true or false, like the reference's {target!r}."}
            )
        return labels.astype(bool)
    return labels.map(lambda v: v if isinstance(v, str) else json.dumps(v))


def retraining_dataset_write(
    *, monitor: Monitor, target: str, user, job: Job | None = None
) -> DatasetVersion:
    """The reference's rows plus the window's labelled predictions (the inputs from the prediction
    log, the label in the target column), written through the datasets service as the next version
    of the reference's dataset: profiled and validated like an upload, with its PII flags."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from datasets import services as datasets

    reference = _retraining_reference_check(reference_for(monitor), target)
    names = [c["name"] for c in reference.columns]
    inputs = [n for n in names if n != target]
    if job is not None:
        jobs.job_progress(job=job, progress=1, message="Reading the labelled predictions")
    window = window_read(monitor, names=inputs)
    idx, labels = labelled_rows(monitor=monitor, window=window)
    if not len(idx):
        raise ValidationError(
            {"retrain_data": "No labelled predictions in the monitor's window: log labels first, or "
             "retrain on the newest dataset version."}
        )
    added = pd.DataFrame({name: window.column(name)[idx] for name in inputs})
    added[target] = _labels_as(labels, reference.column(target)["dtype"], target).to_numpy()
    frame = pd.concat([datasets.version_read_frame(reference), added[names]], ignore_index=True)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationError(
            {"retrain_data": f"The logged inputs do not fit the reference's columns: {exc}"}
        ) from None
    # Flags on any version of the dataset (its rules are the dataset's) and on the reference.
    pii = set(pii_columns(*reference.dataset.versions.values_list("columns", flat=True), reference.columns))
    with tempfile.TemporaryFile() as tmp:
        pq.write_table(table, tmp)
        size = tmp.tell()
        tmp.seek(0)
        created = datasets.dataset_version_create(
            project=monitor.project,
            name=reference.dataset.name,
            stream=tmp,
            user=user,
            content_length=size,
            filename=f"{reference.dataset.name}-retraining.parquet",
            fmt="parquet",
            pii_columns=pii,
        )
    return created.version


def retraining_compute(*, job_id: int) -> None:
    jobs.job_run(job_id=job_id, work=_retraining_work)


def _retraining_work(job: Job) -> dict[str, Any]:
    """Train (the training job's own steps, on this job's row), then register the run's model as the
    next version through the registry, which runs its checks; governance reviews it from there.
    No alias moves: the champion stays until a reviewer approves a promotion."""
    from experiments.models import Run
    from training.services import _train

    retraining = Retraining.objects.select_related("monitor__model", "monitor__project").get(
        pk=job.params["retraining_id"]
    )
    monitor = retraining.monitor
    if job.params.get("retrain_data") == RetrainData.REFERENCE_PLUS_LABELLED:
        # A retried job trains on the version its first attempt wrote.
        data = retraining.dataset_version or retraining_dataset_write(
            monitor=monitor, target=job.params["spec"]["target"], user=job.created_by, job=job
        )
        if retraining.dataset_version_id != data.pk:
            retraining.dataset_version = data
            retraining.save(update_fields=["dataset_version"])
        job.params = {**job.params, "spec": {**job.params["spec"], "dataset_version": data.pk}}
        Job.objects.filter(pk=job.pk).update(params=job.params)
    trained = _train(job)
    run = Run.objects.get(pk=trained["run_id"])
    with transaction.atomic():
        jobs.job_guard(job=job)
        version = registry_services.model_version_create(
            project=monitor.project,
            model_name=monitor.model.name,
            run=run,
            artifact_path="model",
            user=job.created_by,
            description=f"Retrained by the monitor of {monitor} on alert {retraining.alert_id or '-'}.",
        )
        retraining.version = version
        retraining.save(update_fields=["version"])
        audit_record(
            action="monitor.retrained",
            actor=job.created_by,
            object_type="model_version",
            object_id=version.pk,
            project_id=monitor.project_id,
            after={
                "model": monitor.model.name,
                "version": version.version,
                "monitor": monitor.pk,
                "dataset_version": version.training_dataset_version_id,
            },
        )
        transaction.on_commit(
            lambda: signals.retrained_version_created.send(sender=Monitor, version=version, monitor=monitor)
        )
    return {**trained, "model": monitor.model.name, "version": version.version}
