"""The fairness audit and the SHAP explanation of a model version: starting, re-running, job bodies.

Both start when a version becomes ready (governance.receivers) and can be re-run. Each is one row
per version (FairnessReport, Explanation) created with its job, so readers see a status at once;
a job writes its results only if it is still the row's current job, so a re-run started while an
older job runs is never overwritten by the older one.

Evaluation data, in order: a version made by a training job is judged on that job's own held-out
split, re-derived from the recorded spec and seed (training.services.training_split); a
version logged from a script on the dataset version it trained on when that version names a
target column (roles), or on a dataset version the user chooses on re-run. The explanation falls
back to the version's stored input example when there is no dataset.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.selectors import pii_columns
from core import jobs
from core.models import Job, JobStatus
from datasets.models import ColumnRole, DatasetVersion
from governance import explain as shap_explain
from governance import fairness
from governance.models import AnalysisStatus, Explanation, FairnessReport
from governance.signals import analysis_finished
from governance.verdicts import FairnessThresholds
from registry.models import ModelVersion, OutputKind, VersionStatus
from training.models import TrainingRun

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    import pandas as pd

FAIRNESS_KIND = "fairness_audit"
EXPLANATION_KIND = "explanation"
TRAINING_SPLIT = "training_split"
DATASET_VERSION = "dataset_version"
INPUT_EXAMPLE = "input_example"
# Rows of sampled per-row explanations kept on the row (the API and page show these).
SAMPLED_ROWS = 20
BEESWARM_ROWS = 500
# Rows one per-prediction explanation request may hold: it is computed in the request.
EXPLAIN_REQUEST_MAX_ROWS = 20

logger = logging.getLogger(__name__)


def thresholds_for_version(version: ModelVersion) -> FairnessThresholds:
    """The fairness thresholds a version is judged by: its model's policy (or the project's)."""
    from governance.policies import policy_for_model

    return policy_for_model(version.model).fairness_thresholds()


# --- starting -------------------------------------------------------------------------------


def _source_clean(version: ModelVersion, source: Any) -> dict[str, Any]:
    """A user-chosen evaluation dataset: {"dataset_version", "target", "sensitive_features",
    "positive_label"?}, checked against the project and the model's input columns."""
    if not isinstance(source, dict):
        raise ValidationError({"dataset_version": "Give a dataset version id, a target and sensitive "
                                                  "features."})
    unknown = set(source) - {"dataset_version", "target", "sensitive_features", "positive_label"}
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Unknown field."})
    dv_id = source.get("dataset_version")
    if isinstance(dv_id, bool) or not isinstance(dv_id, int):
        raise ValidationError({"dataset_version": "Must be a dataset version id (an integer)."})
    dataset = DatasetVersion.objects.select_related("dataset").filter(
        pk=dv_id, dataset__project_id=version.model.project_id).first()
    if dataset is None:
        raise ValidationError({"dataset_version": f"No dataset version {dv_id} in this project."})
    target = source.get("target")
    if not isinstance(target, str) or dataset.column(target) is None:
        raise ValidationError({"target": f"{dataset} has no column {str(target)[:100]!r}."})
    sensitive = source.get("sensitive_features")
    if sensitive is None:
        sensitive = [c["name"] for c in dataset.columns if c.get("role") == ColumnRole.SENSITIVE]
    if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive) \
            or len(set(sensitive)) != len(sensitive):
        raise ValidationError({"sensitive_features": "Must be a list of distinct column names."})
    if not sensitive:
        raise ValidationError({"sensitive_features": "Name at least one sensitive column (or give columns "
                                                     "of the dataset version the role 'sensitive')."})
    for name in sensitive:
        if dataset.column(name) is None:
            raise ValidationError({"sensitive_features": f"{dataset} has no column {name!r}."})
        if name == target:
            raise ValidationError({"sensitive_features": "The target cannot be a sensitive feature."})
    missing = [c["name"] for c in version.columns if dataset.column(c["name"]) is None]
    if missing:
        raise ValidationError({"dataset_version": f"{dataset} lacks the model's input columns: "
                                                  f"{', '.join(missing[:10])}."})
    clean = {"kind": DATASET_VERSION, "dataset_version_id": dataset.pk, "target": target,
             "sensitive_features": sensitive}
    if "positive_label" in source:
        label = source["positive_label"]
        if str(label) not in [str(c) for c in version.classes]:
            raise ValidationError({"positive_label": f"Not one of the model's classes "
                                                     f"({', '.join(map(str, version.classes))})."})
        clean["positive_label"] = label
    return clean


def _source_auto(version: ModelVersion) -> dict[str, Any] | None:
    """Where a version's evaluation data comes from when nobody chose it; None if nowhere."""
    record = TrainingRun.objects.filter(run_id=version.run_id).only("spec").first()
    if record is not None:
        spec = record.spec
        return {"kind": TRAINING_SPLIT, "run_id": str(version.run_id),
                "dataset_version_id": spec.get("dataset_version"), "target": spec.get("target"),
                "seed": (spec.get("split") or {}).get("seed")}
    dataset = version.training_dataset_version
    if dataset is not None:
        targets = [c["name"] for c in dataset.columns if c.get("role") == ColumnRole.TARGET]
        if len(targets) == 1 and all(dataset.column(c["name"]) for c in version.columns):
            return {"kind": DATASET_VERSION, "dataset_version_id": dataset.pk, "target": targets[0],
                    "sensitive_features": [c["name"] for c in dataset.columns
                                           if c.get("role") == ColumnRole.SENSITIVE]}
    return None


def _ready(version: ModelVersion) -> None:
    if version.status != VersionStatus.READY:
        raise ValidationError({"version": f"Version {version.version} is {version.get_status_display()}; "
                                          "it is analysed once its checks pass."})


def fairness_start(*, version: ModelVersion, user=None, source: Any = None) -> FairnessReport:
    """Create or reset the version's fairness report and queue its audit job."""
    _ready(version)
    chosen = _source_clean(version, source) if source is not None else None
    with transaction.atomic():
        report, _ = FairnessReport.objects.select_for_update().get_or_create(version=version)
        resolved = chosen or _source_auto(version) or {}
        job = jobs.job_create(kind=FAIRNESS_KIND, project=version.model.project, user=user,
                              params={"model_version_id": version.pk, "source": chosen})
        FairnessReport.objects.filter(pk=report.pk).update(
            job=job, status=AnalysisStatus.QUEUED, error="", data_source=resolved, groups=[], summary={},
            task=version.output_kind, sensitive_features=resolved.get("sensitive_features") or [],
            min_group_size=thresholds_for_version(version).min_group_size,
        )
        report.refresh_from_db()
    return report


def explanation_start(*, version: ModelVersion, user=None) -> Explanation:
    """Create or reset the version's explanation and queue its job."""
    _ready(version)
    with transaction.atomic():
        explanation, _ = Explanation.objects.select_for_update().get_or_create(version=version)
        job = jobs.job_create(kind=EXPLANATION_KIND, project=version.model.project, user=user,
                              params={"model_version_id": version.pk})
        Explanation.objects.filter(pk=explanation.pk).update(
            job=job, status=AnalysisStatus.QUEUED, error="", rows=[], beeswarm={}, global_importance={},
            base_value=None, additivity_ok=None, additivity_max_error=None, row_count=0, background_size=0,
            background=[], notes=[],
        )
        explanation.refresh_from_db()
    return explanation


def analyses_start(*, version: ModelVersion, user=None) -> None:
    """Both analyses of a version that just became ready (the jobs are queued on commit)."""
    with transaction.atomic():
        fairness_start(version=version, user=user)
        explanation_start(version=version, user=user)


# --- evaluation data ------------------------------------------------------------------------


@dataclass
class EvaluationData:
    X: pd.DataFrame  # the model's input columns
    y: pd.Series | None
    sensitive: pd.DataFrame | None
    source: dict[str, Any]
    description: str


def _inputs_like_training(frame: pd.DataFrame, version: ModelVersion) -> pd.DataFrame:
    """Text columns as Python strings, as a training job hands them to its pipeline."""
    X = frame[[c["name"] for c in version.columns]].copy()
    for column in version.columns:
        if column.get("dtype") == "string":
            X[column["name"]] = X[column["name"]].map(lambda v: v if v is None or v != v else str(v))
    return X


def _target_like_classes(y: pd.Series, version: ModelVersion) -> pd.Series:
    if version.output_kind != OutputKind.CLASSIFICATION:
        return y.astype(float)
    if version.classes and all(isinstance(c, str) for c in version.classes):
        return y.map(str)
    return y


def evaluation_data(version: ModelVersion, source: dict[str, Any] | None) -> EvaluationData:
    """The rows a version is audited and explained on (see the module docstring)."""
    from datasets.services import version_read_frame
    from training.services import training_split

    source = source or _source_auto(version)
    if source is None:
        raise ValidationError({"dataset_version": (
            "No evaluation data: this version was not made by a training job and its dataset names no "
            "target column. Re-run the audit with a dataset version, its target and sensitive columns.")})
    if source["kind"] == TRAINING_SPLIT:
        record = TrainingRun.objects.get(run_id=version.run_id)
        spec = record.spec
        dataset = DatasetVersion.objects.select_related("dataset").get(pk=spec["dataset_version"])
        sensitive = list(spec.get("sensitive_features") or [
            c["name"] for c in dataset.columns if c.get("role") == ColumnRole.SENSITIVE])
        sensitive = [s for s in sensitive if dataset.column(s) is not None]
        split = training_split(spec=spec, version=dataset, features=list(record.resolved_features),
                               extra_columns=sensitive)
        source = {**source, "sensitive_features": sensitive}
        return EvaluationData(
            X=split.X_test, y=split.y_test, source=source,
            sensitive=split.extra_test if sensitive else None,
            description=f"the held-out split of {dataset.dataset.name} v{dataset.version} "
                        f"({len(split.X_test)} rows, seed {spec['split']['seed']})",
        )
    dataset = DatasetVersion.objects.select_related("dataset").get(pk=source["dataset_version_id"])
    inputs = [c["name"] for c in version.columns]
    target, sensitive = source["target"], list(source.get("sensitive_features") or [])
    wanted = list(dict.fromkeys([*inputs, target, *sensitive]))
    frame = version_read_frame(dataset, columns=wanted)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    if len(frame) > settings.FAIRNESS_MAX_ROWS:
        frame = frame.sample(settings.FAIRNESS_MAX_ROWS, random_state=0).reset_index(drop=True)
    if not len(frame):
        raise ValidationError({"target": f"{dataset} has no rows with a {target!r}."})
    return EvaluationData(
        X=_inputs_like_training(frame, version), y=_target_like_classes(frame[target], version),
        sensitive=frame[sensitive] if sensitive else None, source=source,
        description=f"{dataset.dataset.name} v{dataset.version} ({len(frame)} rows)",
    )


# --- job bodies -----------------------------------------------------------------------------


def _version_of(job: Job) -> ModelVersion:
    version = ModelVersion.objects.select_related("model__project", "run").filter(
        pk=job.params.get("model_version_id")).first()
    if version is None:
        raise ValidationError({"model_version_id": "The model version no longer exists."})
    return version


def _finish(model, job_id: int) -> None:
    """Mirror a job that ended without storing its result (failed, cancelled) onto its row."""
    job = Job.objects.filter(pk=job_id).only("status", "error", "message").first()
    if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.QUEUED, JobStatus.RUNNING):
        return
    rows = model.objects.filter(job_id=job_id, status__in=[AnalysisStatus.QUEUED, AnalysisStatus.RUNNING])
    version_ids = list(rows.values_list("version_id", flat=True))
    rows.update(status=AnalysisStatus.FAILED, error=(job.error or job.message or job.status)[:5000])
    kind = "fairness" if model is FairnessReport else "explanation"
    for version_id in version_ids:
        analysis_finished.send(sender=model, version_id=version_id, kind=kind)


def _run(model, job_id: int, work) -> None:
    try:
        jobs.job_run(job_id=job_id, work=work)
    except Exception:  # noqa: BLE001 - recorded on the job and its row; see below
        # job_run stored the error on the job. Not raised further: with eager tasks (debugging,
        # the SDK's test server) the analyses run inside the request whose check made the version
        # ready, and an analysis that fails must not fail that request.
        logger.exception("Governance analysis job %s failed", job_id)
    finally:
        _finish(model, job_id)


def _current_row(model, job: Job):
    """The analysis row this job is still the current job of; None once a re-run replaced it."""
    row = model.objects.filter(job=job).first()
    if row is not None:
        model.objects.filter(pk=row.pk, job=job).update(status=AnalysisStatus.RUNNING)
    return row


def fairness_compute(*, job_id: int) -> None:
    """Job body: the bias audit of one version on its evaluation data."""
    from registry.loading import estimator_load

    def work(job: Job) -> dict[str, Any]:
        report = _current_row(FairnessReport, job)
        if report is None:
            return {"skipped": "A newer audit of this version replaced this job."}
        version = _version_of(job)
        jobs.job_progress(job=job, progress=5, message="Reading the evaluation data")
        data = evaluation_data(version, job.params.get("source"))
        if data.sensitive is None or data.sensitive.shape[1] == 0:
            raise ValidationError({"sensitive_features": (
                "No sensitive features: name them in the training spec, give dataset columns the role "
                "'sensitive', or re-run the audit naming them.")})
        jobs.job_progress(job=job, progress=20, message=f"Predicting on {data.description}")
        estimator = estimator_load(version)
        y_pred = np.asarray(estimator.predict(data.X))
        task = version.output_kind or fairness.CLASSIFICATION
        positive = data.source.get("positive_label", fairness.positive_label(version.classes)) \
            if task == fairness.CLASSIFICATION else None
        if task == fairness.CLASSIFICATION and version.classes:
            # Labels compared as the model's own class values (a "1" from a text column is 1).
            by_text = {str(c): c for c in version.classes}
            positive = by_text.get(str(positive), positive)
            y_true = np.asarray([by_text.get(str(v), v) for v in data.y])
        else:
            y_true = np.asarray(data.y)
        thresholds = thresholds_for_version(version)

        def progress(done: int, total: int) -> None:
            jobs.job_progress(job=job, progress=30 + int(60 * done / total),
                              message="Computing group metrics")

        result = fairness.fairness_audit(
            task=task, y_true=y_true, y_pred=y_pred, sensitive=data.sensitive, positive=positive,
            min_group_size=thresholds.min_group_size, bootstrap=settings.FAIRNESS_BOOTSTRAP_SAMPLES,
            seed=int(data.source.get("seed") or 0), progress=progress,
        )
        pii = sorted(_pii_columns(version, data) & set(data.sensitive.columns))
        source = {**data.source, "rows": int(len(y_true)), "description": data.description,
                  "pii_features": pii}
        if task == fairness.CLASSIFICATION:
            source["positive_label"] = positive.item() if hasattr(positive, "item") else positive
        with transaction.atomic():
            jobs.job_guard(job=job)
            stored = FairnessReport.objects.filter(pk=report.pk, job=job).update(
                status=AnalysisStatus.SUCCEEDED, error="", groups=result["groups"], summary=result["summary"],
                task=task, data_source=source, sensitive_features=list(data.sensitive.columns),
                min_group_size=thresholds.min_group_size,
            )
            if stored:  # open promotion requests for this version are judged again
                analysis_finished.send(sender=FairnessReport, version_id=report.version_id, kind="fairness")
        return {"groups": len(result["groups"]), "features": list(result["summary"]), "rows": len(y_true)}

    _run(FairnessReport, job_id, work)


def _pii_columns(version: ModelVersion, data: EvaluationData) -> frozenset[str]:
    dataset_id = data.source.get("dataset_version_id")
    dataset = DatasetVersion.objects.filter(pk=dataset_id).only("columns").first() if dataset_id else None
    return pii_columns(version.columns, dataset.columns if dataset is not None else ())


def _explanation_rows(version: ModelVersion) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """(input rows, source, description): the evaluation data, else the stored input example."""
    try:
        data = evaluation_data(version, None)
        return data.X, {k: v for k, v in data.source.items() if k != "sensitive_features"}, data.description
    except ValidationError:
        if not version.example:
            raise
    from registry import signature as sig

    X = sig.example_frame(version.example, version.columns)
    return X, {"kind": INPUT_EXAMPLE}, f"the version's input example ({len(X)} rows)"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{c: shap_explain._json_value(v) for c, v in row.items()} for row in frame.to_dict("records")]


def explanation_compute(*, job_id: int) -> None:
    """Job body: SHAP values of one version over its evaluation rows."""
    from registry.loading import estimator_load

    def work(job: Job) -> dict[str, Any]:
        explanation = _current_row(Explanation, job)
        if explanation is None:
            return {"skipped": "A newer explanation of this version replaced this job."}
        version = _version_of(job)
        jobs.job_progress(job=job, progress=5, message="Reading the evaluation data")
        X, source, description = _explanation_rows(version)
        estimator = estimator_load(version)
        explainer, output = shap_explain.choose(estimator, list(X.columns), version.classes)
        limit = settings.EXPLANATION_PERMUTATION_ROWS if explainer == shap_explain.PERMUTATION \
            else settings.EXPLANATION_MAX_ROWS
        background_size = settings.EXPLANATION_BACKGROUND_ROWS
        if explainer == shap_explain.PERMUTATION:
            background_size = min(background_size, 50)
        rows = X.sample(min(limit, len(X)), random_state=0) if len(X) > limit else X
        background = X.sample(min(background_size, len(X)), random_state=1)
        jobs.job_progress(job=job, progress=20,
                          message=f"Explaining {len(rows)} rows with the {explainer} explainer")
        explained = shap_explain.explain(estimator=estimator, X=rows, background=background,
                                         classes=version.classes, explainer=explainer, output=output)
        jobs.job_progress(job=job, progress=90, message="Storing the explanation")
        fields = {
            "status": AnalysisStatus.SUCCEEDED, "error": "", "explainer": explained.explainer,
            "output": explained.output, "base_value": explained.base_value,
            "global_importance": shap_explain.global_importance(explained),
            "rows": shap_explain.rows_output(explained, rows, SAMPLED_ROWS),
            "beeswarm": shap_explain.beeswarm_data(explained, rows, BEESWARM_ROWS),
            "additivity_ok": explained.additivity_ok, "additivity_max_error": explained.additivity_max_error,
            "row_count": len(rows), "background_size": len(background), "background": _records(background),
            "explained_class": explained.explained_class.item() if hasattr(explained.explained_class, "item")
            else explained.explained_class,
            "data_source": {**source, "description": description}, "notes": explained.notes,
        }
        with transaction.atomic():
            jobs.job_guard(job=job)
            if Explanation.objects.filter(pk=explanation.pk, job=job).update(**fields):
                analysis_finished.send(sender=Explanation, version_id=explanation.version_id,
                                       kind="explanation")
        return {"explainer": explained.explainer, "output": explained.output, "rows": len(rows),
                "additivity_ok": explained.additivity_ok}

    _run(Explanation, job_id, work)


# --- per-prediction explanations ------------------------------------------------------------

_loaded: OrderedDict[tuple[int, str], Any] = OrderedDict()
LOADED_KEEP = 4


def _estimator(version: ModelVersion):
    from registry.loading import estimator_load

    key = (version.pk, version.sha256)
    if key not in _loaded:
        _loaded[key] = estimator_load(version)
        while len(_loaded) > LOADED_KEEP:
            _loaded.popitem(last=False)
    _loaded.move_to_end(key)
    return _loaded[key]


def explanation_for_records(*, version: ModelVersion, body: Any) -> dict[str, Any]:
    """SHAP values for a few posted rows, with the explainer and background the stored
    explanation used, so they are comparable with it."""
    import pandas as pd

    from core.errors import Conflict, PayloadTooLarge
    from registry import signature as sig
    from registry.loading import ModelLoadRefused

    explanation = Explanation.objects.filter(version=version).first()
    if version.status != VersionStatus.READY:
        raise Conflict(f"Version {version.version} is not ready; it cannot be explained.")
    if explanation is None or explanation.status != AnalysisStatus.SUCCEEDED:
        raise Conflict("This version's explanation has not finished; explain single rows once it has.")
    try:
        parsed = sig.request_parse(body, version.columns, max_rows=EXPLAIN_REQUEST_MAX_ROWS)
    except sig.TooManyRows as exc:
        raise PayloadTooLarge(str(exc)) from None
    X = parsed.frame()
    for column in version.columns:
        if column.get("dtype") == "string":
            X[column["name"]] = X[column["name"]].map(lambda v: v if v is None or v != v else str(v))
    try:
        estimator = _estimator(version)
    except ModelLoadRefused as exc:
        raise Conflict(f"Version {version.version} cannot be loaded: {exc}") from None
    background = pd.DataFrame(explanation.background, columns=[c["name"] for c in version.columns]) \
        if explanation.background else None
    if background is not None:
        background = _inputs_like_training(background, version)
    explained = shap_explain.explain(
        estimator=estimator, X=X, background=background, classes=version.classes,
        explained_class=explanation.explained_class, explainer=explanation.explainer,
        output=explanation.output,
    )
    return {
        "explainer": explained.explainer, "output": explained.output,
        "explained_class": explanation.explained_class, "base_value": explained.base_value,
        "rows": shap_explain.rows_output(explained, X, EXPLAIN_REQUEST_MAX_ROWS),
        "additivity_ok": explained.additivity_ok,
    }
