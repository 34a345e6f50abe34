"""Training jobs: a plain-JSON spec checked up front, trained on a worker, logged to a new run.

The spec is checked in the web process against the dataset version's schema
and the estimator's own parameter constraints, so most mistakes are a 400
before anything is queued. The worker re-checks what only the data can tell
(a target with one class), trains, and only then creates the run and logs
everything to it in one transaction: a job that fails or is killed leaves no
half-made run behind.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Project
from core import jobs
from core.errors import NotFound
from core.model_files import ModelFileRefused, model_dumps, model_loads
from core.models import Job
from core.validation import key_check, metric_value, param_text, param_value
from datasets.models import DatasetVersion, LineageDirection, RunDataset
from experiments import artifacts, services
from experiments.metric_store import MetricPoint
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH, Run, RunStatus
from training.cancel import FitInterrupted, FitWatch
from training.catalog import CLASSIFICATION, PII_FILES
from training.evaluation import classification_plots, compute_metrics, figure_json, regression_plots
from training.models import TrainingRun
from training.pipeline import build_pipeline, feature_importances, make_estimator, training_split
from training.spec import params_for_target, pii_columns, resolve_features, spec_clean


def _experiment_name(experiment: Any) -> str:
    if (not isinstance(experiment, str) or not experiment.strip()
            or len(experiment.strip()) > EXPERIMENT_NAME_MAX_LENGTH):
        raise ValidationError(
            {"experiment": f"Give an experiment name of 1-{EXPERIMENT_NAME_MAX_LENGTH} characters."})
    return experiment.strip()


def training_job_submit(*, project: Project, experiment: str, spec: Any, user,
                        rerun_of: Run | None = None, sweep_trial=None) -> Job:
    experiment = _experiment_name(experiment)
    clean, version = spec_clean(project=project, spec=spec, user=user)
    _, pii_left_out = resolve_features(version, clean["target"], clean["features"],
                                       allow_pii=clean["allow_pii_features"])
    params = {"experiment": experiment, "spec": clean, "pii_left_out": pii_left_out,
              "rerun_of": str(rerun_of.pk) if rerun_of else None}
    if sweep_trial is not None:
        params["sweep_id"] = sweep_trial.sweep_id
        params["trial"] = sweep_trial.index
    with transaction.atomic():
        job = jobs.job_create(kind="training", project=project, user=user, params=params)
        if sweep_trial is not None:
            sweep_trial.job = job
            sweep_trial.save(update_fields=["job"])
    return job


def training_rerun(*, run: Run, user) -> Job:
    """Train again from the spec a run was made from, on the same feature columns."""
    record = TrainingRun.objects.filter(run=run).first()
    if record is None:
        raise ValidationError({"run": "This run was not created from a training spec; it cannot be re-run."})
    spec = dict(record.spec)
    spec["features"] = record.resolved_features or spec.get("features")
    return training_job_submit(project=run.project, experiment=run.experiment.name, spec=spec,
                               user=user, rerun_of=run)

def training_run(*, job_id: int) -> None:
    """Job body: train from the spec in ``job.params`` and log everything to a new run."""
    try:
        jobs.job_run(job_id=job_id, work=_train)
    finally:
        job = Job.objects.filter(pk=job_id).only("params", "status").first()
        if job is not None and job.params.get("sweep_id") and job.is_final:
            from training import sweeps

            sweeps.sweep_advance(sweep_id=job.params["sweep_id"])


def _train(job: Job) -> dict[str, Any]:
    started = time.time()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)

    def step(progress: int, message: str, line: str = "") -> None:
        text = "".join(f"{x}\n" for x in [*lines, line] if x)
        lines.clear()
        jobs.job_progress(job=job, progress=progress, message=message,
                          log=f"[{time.time() - started:6.1f}s] {text}" if text else "")

    project = job.project
    if project is None:
        raise ValidationError({"project": "The job has no project."})
    # Checked again here: flags and roles may have changed since the job was submitted.
    spec, version = spec_clean(project=project, spec=job.params.get("spec"), user=job.created_by)
    experiment = _experiment_name(job.params.get("experiment"))
    target, task, seed = spec["target"], spec["task"], spec["split"]["seed"]
    features, pii_left_out = resolve_features(version, target, spec["features"],
                                              allow_pii=spec["allow_pii_features"])
    pii_features = sorted(pii_columns(version) & set(features))
    if pii_left_out:
        log(f"Left out PII column(s) {', '.join(pii_left_out)}: the spec does not set allow_pii_features")
    if pii_features:
        log(f"Training on PII column(s) {', '.join(pii_features)}: the model file is PII-bearing")
    step(5, "Loading the dataset", f"Loading {version} ({version.row_count} rows)")

    split = training_split(spec=spec, version=version, features=features)
    if split.dropped:
        log(f"Dropped {split.dropped} rows with no {target!r}")
    X_train, X_test, y_train, y_test = split.X_train, split.X_test, split.y_train, split.y_test
    numeric, categorical = split.numeric, split.categorical
    y = split.y
    model_params = params_for_target(params=spec["params"], task=task, version=version, target=target,
                                     classes=list(y.unique()) if task == CLASSIFICATION else None)
    pipeline = build_pipeline(estimator=spec["estimator"], params=model_params, seed=seed,
                              numeric=numeric, categorical=categorical)
    step(20, f"Fitting {spec['estimator']}",
         f"Split {len(X_train)} train / {len(X_test)} test rows; {len(numeric)} numeric and "
         f"{len(categorical)} categorical features")
    fit_started = time.time()
    watch = FitWatch(job)
    try:
        try:
            watch.start()
            pipeline.fit(X_train, y_train)
        except ValueError as exc:
            raise ValidationError({"params": f"{spec['estimator']} could not be fitted: {exc}"}) from None
        finally:
            watch.close()
    except FitInterrupted:
        raise jobs.JobCancelled("Cancelled during the fit") from None
    fit_seconds = time.time() - fit_started
    step(70, "Computing metrics", f"Fitted in {fit_seconds:.1f}s")

    metrics: dict[str, float] = {}
    for split_name, Xs, ys in (("train", X_train, y_train), ("test", X_test, y_test)):
        for name, value in compute_metrics(task, spec["metrics"], pipeline, Xs, ys, log).items():
            metrics[f"{split_name}_{name}"] = value
    log("  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    step(80, "Making plots and saving the model")

    files: dict[str, bytes] = {}
    if task == CLASSIFICATION:
        files.update(classification_plots(pipeline, X_test, y_test))
    else:
        files.update(regression_plots(pipeline, X_test, y_test, seed))
    importances = feature_importances(pipeline, by_column=set(pii_features))
    if importances is not None:
        files["feature_importances.json"] = json.dumps(importances).encode()
        top = importances[:30][::-1]
        files["plots/feature_importances.json"] = figure_json(
            [{"type": "bar", "orientation": "h", "x": [p["importance"] for p in top],
              "y": [p["feature"] for p in top]}],
            {"title": {"text": "Feature importances"}, "margin": {"l": 200}})
    # Saved and reloaded under the registry's own policy, so what trains also registers.
    try:
        model_bytes, trusted = model_dumps(pipeline)
        reloaded = model_loads(model_bytes)
    except ModelFileRefused as exc:
        raise ValidationError({"estimator": str(exc)}) from None
    if not np.array_equal(np.asarray(reloaded.predict(X_test.head(50))),
                          np.asarray(pipeline.predict(X_test.head(50)))):
        raise RuntimeError("The saved model does not predict like the fitted one.")
    files["model/model.skops"] = model_bytes
    signature = {
        "inputs": [{"name": f, "dtype": split.dtypes[f]} for f in features],
        "target": {"name": target, "dtype": split.dtypes[target]},
        "task": task,
        "classes": [c.item() if hasattr(c, "item") else c for c in pipeline.classes_]
        if task == CLASSIFICATION else None,
        "format": "skops",
        "trusted_types": trusted,
        "dataset_version": version.pk,
    }
    files["model/signature.json"] = json.dumps(signature, indent=2).encode()
    files["spec.json"] = json.dumps(spec, indent=2).encode()

    step(90, "Logging to a new run")
    run = _log_run(job=job, project=project, experiment=experiment, spec=spec, version=version,
                   features=features, metrics=metrics, files=files, fit_seconds=fit_seconds,
                   started=started, pii_left_out=pii_left_out, pii_features=pii_features)
    jobs.job_progress(job=job, progress=99, message="Done", cancellable=False,
                      log=f"[{time.time() - started:6.1f}s] Logged run {run.pk}\n")
    return {"run_id": str(run.pk), "metrics": metrics, "experiment": experiment,
            "pii_left_out": pii_left_out, "pii_features": pii_features}


def _log_run(*, job: Job, project: Project, experiment: str, spec: dict[str, Any], version: DatasetVersion,
             features: list[str], metrics: dict[str, float], files: dict[str, bytes], fit_seconds: float,
             started: float, pii_left_out: list[str], pii_features: list[str]) -> Run:
    rerun_of = job.params.get("rerun_of")
    sweep_id = job.params.get("sweep_id")
    tags = {
        "steward.source": "training_job",
        "steward.job_id": str(job.pk),
        "steward.estimator": spec["estimator"],
        "steward.task": spec["task"],
        "steward.dataset": f"{version.dataset.name}:v{version.version}",
        "steward.sensitive_features": json.dumps(spec["sensitive_features"]),
    }
    if pii_left_out:
        tags["steward.pii_left_out"] = json.dumps(pii_left_out)
    if pii_features:
        tags["steward.pii_features"] = json.dumps(pii_features)
    if rerun_of:
        tags["steward.rerun_of"] = rerun_of
    if sweep_id:
        tags["steward.sweep_id"] = str(sweep_id)
    estimator = make_estimator(spec["estimator"], spec["params"], spec["split"]["seed"])
    est_params = estimator.get_params(deep=False)
    params = {k: param_text(v) for k, v in est_params.items()}
    params.update({
        "estimator": spec["estimator"], "task": spec["task"], "target": spec["target"],
        "dataset_version": version.pk, "test_size": spec["split"]["test_size"],
        "stratify": spec["split"]["stratify"], "seed": spec["split"]["seed"], "n_features": len(features),
    })
    pairs = [(key, param_value(value, f"params.{key}")) for key, value in params.items()]
    now = services.now_ms()
    # How long the fit took describes the machine, not the model: under system/ it stays out of
    # leaderboards and comparisons, and every other metric is the same on a re-run.
    points = [MetricPoint(key_check(key, "metrics"), metric_value(value, f"metrics.{key}"), 0, now)
              for key, value in [*sorted(metrics.items()), ("system/fit_seconds", fit_seconds)]]
    name = f"{spec['estimator']} on {version.dataset.name} v{version.version}"
    with transaction.atomic():
        # A retried job (its first worker died) may find the run it made before the crash.
        existing = TrainingRun.objects.filter(job=job).select_related("run").first()
        if existing is not None:
            return existing.run
        # The last point a cancel (or a re-queue) counts: it either came before (no
        # run, nothing stored) or waits until the run is committed and is then too
        # late (the job succeeds).
        jobs.job_guard(job=job)
        run = services.run_create(
            project=project, experiment=experiment, user=job.created_by, name=name[:250],
            start_time=dt.datetime.fromtimestamp(started, tz=dt.UTC), tags=list(tags.items()),
            seed=spec["split"]["seed"],
        ).run
        services.params_log(run=run, pairs=pairs)
        services.metrics_log(run=run, points=points)
        for path, data in files.items():
            content_type = "application/json" if path.endswith(".json") else "application/octet-stream"
            # The fitted encoders and imputers keep the values of the PII columns they saw.
            artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data),
                                      content_type=content_type, pii=bool(pii_features) and path in PII_FILES)
        RunDataset.objects.create(run=run, dataset_version=version, direction=LineageDirection.INPUT,
                                  role="train")
        TrainingRun.objects.create(
            run=run, spec=spec, resolved_features=features, job=job, sweep_id=sweep_id,
            rerun_of=Run.objects.filter(pk=rerun_of).first() if rerun_of else None,
        )
        services.run_update(run=run, status=RunStatus.FINISHED)
    return run


def training_record_for(run: Run) -> TrainingRun:
    record = TrainingRun.objects.filter(run=run).first()
    if record is None:
        raise NotFound("This run was not created from a training spec.")
    return record
