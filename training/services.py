"""Training jobs: a plain-JSON spec checked up front, trained on a worker, logged to a new run.

The spec is checked in the web process against the dataset version's schema
and the estimator's own parameter constraints, so most mistakes are a 400
before anything is queued. The worker re-checks what only the data can tell
(a target with one class), trains, and only then creates the run and logs
everything to it in one transaction: a job that fails or is killed leaves no
half-made run behind.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from accounts import selectors as account_selectors
from accounts.json_input import check_json_value
from accounts.models import Project
from accounts.permissions import can_see_pii
from core import jobs
from core.errors import NotFound
from core.model_files import ModelFileRefused, model_dumps, model_loads
from core.models import Job, JobStatus
from datasets import services as datasets
from datasets.models import DatasetVersion, LineageDirection, RunDataset
from experiments import artifacts, services
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH, Run, RunStatus
from experiments.validation import param_text
from training.models import TrainingRun

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# name -> (module, task). Only these are ever imported: a spec never names a module.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "LogisticRegression": ("sklearn.linear_model", CLASSIFICATION),
    "RidgeClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "SGDClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "RandomForestClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "ExtraTreesClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "GradientBoostingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "HistGradientBoostingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "AdaBoostClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "SVC": ("sklearn.svm", CLASSIFICATION),
    "LinearSVC": ("sklearn.svm", CLASSIFICATION),
    "KNeighborsClassifier": ("sklearn.neighbors", CLASSIFICATION),
    "DecisionTreeClassifier": ("sklearn.tree", CLASSIFICATION),
    "GaussianNB": ("sklearn.naive_bayes", CLASSIFICATION),
    "LinearRegression": ("sklearn.linear_model", REGRESSION),
    "Ridge": ("sklearn.linear_model", REGRESSION),
    "Lasso": ("sklearn.linear_model", REGRESSION),
    "ElasticNet": ("sklearn.linear_model", REGRESSION),
    "SGDRegressor": ("sklearn.linear_model", REGRESSION),
    "RandomForestRegressor": ("sklearn.ensemble", REGRESSION),
    "ExtraTreesRegressor": ("sklearn.ensemble", REGRESSION),
    "GradientBoostingRegressor": ("sklearn.ensemble", REGRESSION),
    "HistGradientBoostingRegressor": ("sklearn.ensemble", REGRESSION),
    "AdaBoostRegressor": ("sklearn.ensemble", REGRESSION),
    "SVR": ("sklearn.svm", REGRESSION),
    "LinearSVR": ("sklearn.svm", REGRESSION),
    "KNeighborsRegressor": ("sklearn.neighbors", REGRESSION),
    "DecisionTreeRegressor": ("sklearn.tree", REGRESSION),
}

METRICS = {
    CLASSIFICATION: ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"],
    REGRESSION: ["r2", "mse", "rmse", "mae", "median_ae"],
}
DEFAULT_METRICS = {CLASSIFICATION: ["accuracy", "f1", "roc_auc"], REGRESSION: ["r2", "rmse", "mae"]}
NEEDS_SCORES = {"roc_auc", "log_loss"}
SPEC_KEYS = {"dataset_version", "target", "features", "sensitive_features", "task", "estimator",
             "params", "split", "metrics", "allow_pii_features"}
SPLIT_KEYS = {"test_size", "stratify", "seed"}
NOT_FEATURE_ROLES = {"id", "timestamp", "ignore"}
USABLE_DTYPES = {"int64", "float64", "bool", "string"}
MAX_PARAMS = 100
MAX_OBJECT_KEYS = 1000
# Hyperparameters whose JSON object is keyed by the target's class labels.
CLASS_KEYED_PARAMS = ("class_weight",)
# Hyperparameters whose object would name the estimator's input features.
FEATURE_KEYED_PARAMS = ("monotonic_cst",)
MAX_PLOT_POINTS = 5000
# What a run trained on PII columns writes that holds their values. The plots and JSON
# name columns and classes only (a PII column cannot be the target).
PII_FILES = {"model/model.skops"}


def estimator_class(name: str):
    module, _ = ESTIMATORS[name]
    return getattr(importlib.import_module(module), name)


def estimator_catalog() -> list[dict[str, Any]]:
    """The allow-list with each estimator's task and default parameters (for the form)."""
    out = []
    for name, (_, task) in ESTIMATORS.items():
        params = {k: v for k, v in estimator_class(name)().get_params(deep=False).items()
                  if v is None or isinstance(v, (bool, int, float, str))}
        out.append({"name": name, "task": task, "params": params})
    return out


# --- the spec ------------------------------------------------------------------------------


def _str_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValidationError({field: "Must be a list of column names."})
    if len(set(value)) != len(value):
        raise ValidationError({field: "Lists a column twice."})
    return value


def _json_scalar(value: Any) -> bool:
    if isinstance(value, (bool, int, str)) or value is None:
        return True
    return isinstance(value, float) and math.isfinite(value)


def _json_list_or_scalar(value: Any) -> bool:
    return _json_scalar(value) or (isinstance(value, list) and all(_json_scalar(x) for x in value))


def _object_check(estimator: str, name: str, value: dict, est) -> None:
    """A JSON object only where the estimator's own constraints take a dict (class_weight, metric_params)."""
    field = f"params.{name}"
    constraints = getattr(type(est), "_parameter_constraints", {}).get(name, ())
    if not any(c is dict for c in constraints):
        raise ValidationError({field: f"{estimator}'s {name} does not take an object; give a number, string, "
                                      "boolean, null or a list of those."})
    if name in FEATURE_KEYED_PARAMS:
        raise ValidationError({field: f"An object for {name} names feature columns, which the preprocessing "
                                      "renames; give a list instead."})
    if len(value) > MAX_OBJECT_KEYS:
        raise ValidationError({field: f"At most {MAX_OBJECT_KEYS} entries."})
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError({field: "Keys must be non-empty strings."})
        if name in CLASS_KEYED_PARAMS:
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) \
                    or item <= 0:
                raise ValidationError({field: f"The weight of class {key!r} must be a positive number, "
                                              f"not {json.dumps(item)[:50]}."})
        elif not _json_list_or_scalar(item):
            raise ValidationError({field: f"{key!r} must be a number, string, boolean, null or a list "
                                          "of those."})


def params_check(estimator: str, params: Any) -> dict[str, Any]:
    """Names from the estimator's get_params(); values against its own parameter constraints.

    Values are JSON: numbers, strings, booleans, null, lists of those, and
    objects where the estimator takes a dict. An object's keys stay strings
    here; class_weight's are matched to the target's classes by
    ``class_keys_map`` (once the classes are known).
    """
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ValidationError({"params": "Must be an object of parameter name -> value."})
    if len(params) > MAX_PARAMS:
        raise ValidationError({"params": f"At most {MAX_PARAMS} parameters."})
    est = estimator_class(estimator)()
    known = est.get_params(deep=False)
    params = dict(params)
    for name, value in params.items():
        field = f"params.{name}"
        if name not in known:
            close = sorted(k for k in known if k.split("_")[0] == name.split("_")[0])[:5]
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValidationError({field: f"{estimator} has no parameter {name!r}.{hint}"})
        if isinstance(value, dict):
            _object_check(estimator, name, value, est)
        elif not _json_list_or_scalar(value):
            raise ValidationError({field: "Must be a number, string, boolean, null, a list of those, or an "
                                          "object where the estimator takes one (e.g. class_weight)."})
        if isinstance(value, list):
            params[name] = tuple(value) if isinstance(known[name], tuple) else value
    try:
        est.set_params(**params)
        est._validate_params()
    except (ValueError, TypeError) as exc:
        message = str(exc).strip()
        names = [n for n in params if f"'{n}'" in str(exc)] or list(params)
        raise ValidationError({f"params.{names[0]}": message[:500]}) from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _class_text(value: Any, numeric: bool) -> str | None:
    """A class label as text, so that JSON keys (always strings) can name it: "1" is 1 and 1.0."""
    if not numeric:
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def class_keys_map(weights: dict[str, Any], classes: list[Any], *, numeric: bool, name: str,
                   target: str) -> dict[Any, Any]:
    """An object keyed by class labels as text, re-keyed by the target's own class values."""
    field = f"params.{name}"
    by_text: dict[str | None, Any] = {}
    for c in classes:
        by_text.setdefault(_class_text(c, numeric), c)
    out: dict[Any, Any] = {}
    for key, value in weights.items():
        text = _class_text(key, numeric)
        if text is None or text not in by_text:
            shown = ", ".join(sorted(str(t) for t in by_text)[:20])
            raise ValidationError({field: f"{name} key {key!r} is not a class of {target!r}; "
                                          f"its classes are {shown}."})
        label = by_text[text]
        label = label.item() if hasattr(label, "item") else label
        if label in out:
            raise ValidationError({field: f"{name} names class {text!r} twice."})
        out[label] = value
    return out


def _profiled_classes(version: DatasetVersion, target: str) -> list[str] | None:
    """The target's classes from the version's profile, when the profile lists them all."""
    entry = next((c for c in (version.profile or {}).get("columns", []) if c.get("name") == target), None)
    top = (entry or {}).get("top_values")
    if not top or entry.get("distinct") != len(top):
        return None
    return [t[0] for t in top]


def params_for_target(*, params: dict[str, Any], task: str, version: DatasetVersion, target: str,
                      classes: list[Any] | None = None) -> dict[str, Any]:
    """Class-keyed objects checked against the target's classes and re-keyed by them.

    With ``classes`` None (the web process, before training) the classes come
    from the version's profile when it lists them all; otherwise the worker
    checks them against the data.
    """
    keyed = [n for n in CLASS_KEYED_PARAMS if isinstance(params.get(n), dict)]
    if not keyed or task != CLASSIFICATION:
        return params
    col = version.column(target) or {}
    numeric = col.get("dtype") in ("int64", "float64")
    if classes is None:
        classes = _profiled_classes(version, target)
        if classes is None:
            return params
    out = dict(params)
    for name in keyed:
        out[name] = class_keys_map(params[name], classes, numeric=numeric, name=name, target=target)
    return out


def _split_check(split: Any, task: str) -> dict[str, Any]:
    split = {} if split is None else split
    if not isinstance(split, dict):
        raise ValidationError({"split": "Must be an object {test_size, stratify, seed}."})
    unknown = set(split) - SPLIT_KEYS
    if unknown:
        raise ValidationError({f"split.{sorted(unknown)[0]}": "Unknown field."})
    test_size = split.get("test_size", 0.25)
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise ValidationError({"split.test_size": "Must be a fraction between 0 and 1 (exclusive)."})
    stratify = split.get("stratify", task == CLASSIFICATION)
    if not isinstance(stratify, bool):
        raise ValidationError({"split.stratify": "Must be true or false."})
    if stratify and task == REGRESSION:
        raise ValidationError({"split.stratify": "Stratified splits are for classification only."})
    seed = split.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValidationError({"split.seed": "Must be an integer from 0 to 2**32 - 1."})
    return {"test_size": float(test_size), "stratify": stratify, "seed": seed}


def resolve_features(version: DatasetVersion, target: str, features: list[str] | None, *,
                     allow_pii: bool = False) -> tuple[list[str], list[str]]:
    """(the columns to train on, the PII columns left out of them).

    With no list, every usable column but the target and id, timestamp and
    ignore columns. PII columns, listed or not, are left out unless the spec
    allows them: a fitted encoder keeps their values, as do importances.
    """
    if features is not None:
        candidates = list(features)
    else:
        candidates = [c["name"] for c in version.columns
                      if c["name"] != target and c.get("role") not in NOT_FEATURE_ROLES
                      and c["dtype"] in USABLE_DTYPES]
    if allow_pii:
        return candidates, []
    pii = pii_columns(version)
    return [f for f in candidates if f not in pii], [f for f in candidates if f in pii]


def pii_columns(version: DatasetVersion) -> frozenset[str]:
    return account_selectors.pii_columns(version.columns)


def spec_clean(*, project: Project, spec: Any, user) -> tuple[dict[str, Any], DatasetVersion]:
    """The spec with defaults filled in, or a ValidationError naming the field.

    ``user`` is who trains: only someone who may see PII can let a spec train on it.
    """
    if not isinstance(spec, dict):
        raise ValidationError({"spec": "Must be a JSON object."})
    check_json_value(spec, field="spec")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValidationError({f"spec.{sorted(unknown)[0]}": "Unknown field."})
    for required in ("dataset_version", "target", "task", "estimator"):
        if spec.get(required) in (None, ""):
            raise ValidationError({required: "This field is required."})

    dv_id = spec["dataset_version"]
    if isinstance(dv_id, bool) or not isinstance(dv_id, int):
        raise ValidationError({"dataset_version": "Must be a dataset version id (an integer)."})
    version = DatasetVersion.objects.select_related("dataset").filter(
        pk=dv_id, dataset__project=project
    ).first()
    if version is None:
        raise ValidationError({"dataset_version": f"No dataset version {dv_id} in this project."})

    task = spec["task"]
    if task not in TASKS:
        raise ValidationError({"task": "Must be 'classification' or 'regression'."})
    estimator = spec["estimator"]
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValidationError({"estimator": f"{str(estimator)[:100]!r} is not an allowed estimator. "
                                            f"Choose one of: {', '.join(ESTIMATORS)}."})
    if ESTIMATORS[estimator][1] != task:
        raise ValidationError({"estimator": f"{estimator} is for {ESTIMATORS[estimator][1]}, not {task}."})

    target = spec["target"]
    if not isinstance(target, str):
        raise ValidationError({"target": "Must be a column name."})
    target_col = version.column(target)
    if target_col is None:
        raise ValidationError({"target": f"The dataset version has no column {target!r}. "
                                         f"Columns: {', '.join(c['name'] for c in version.columns)[:300]}."})
    if target_col.get("single_value"):
        raise ValidationError({"target": f"{target!r} has a single value in every row; "
                                         "there is nothing to learn."})
    if task == REGRESSION and target_col["dtype"] not in ("int64", "float64"):
        raise ValidationError({"target": f"Regression needs a numeric target; {target!r} is "
                                         f"{target_col['dtype']}."})
    if target_col["dtype"] not in USABLE_DTYPES:
        raise ValidationError({"target": f"{target!r} is {target_col['dtype']} and cannot be a target."})
    if target_col.get("pii"):
        # Its values would be the model's classes and predictions, and label its plots, for every viewer.
        raise ValidationError({"target": f"{target!r} is marked PII and cannot be the target: the model's "
                                         "classes, plots and predictions would show its values to every "
                                         "viewer. Clear its PII flag if its values may be shown."})
    allow_pii = spec.get("allow_pii_features", False)
    if not isinstance(allow_pii, bool):
        raise ValidationError({"allow_pii_features": "Must be true or false."})
    if allow_pii and not can_see_pii(user, project):
        raise ValidationError({"allow_pii_features": "Training on PII columns needs a role that may see "
                                                     "them (editor or above)."})

    features = spec.get("features")
    if features is not None:
        features = _str_list(features, "features")
        for name in features:
            col = version.column(name)
            if col is None:
                raise ValidationError({"features": f"The dataset version has no column {name!r}."})
            if name == target:
                raise ValidationError({"features": f"The target {target!r} cannot also be a feature."})
            if col["dtype"] not in USABLE_DTYPES:
                raise ValidationError({"features": f"{name!r} is {col['dtype']}; only numbers, text and "
                                                   "booleans can be features."})
    chosen, pii_left_out = resolve_features(version, target, features, allow_pii=allow_pii)
    if not chosen and pii_left_out:
        raise ValidationError({"features": f"Every feature column is PII ({', '.join(pii_left_out)}); set "
                                           "allow_pii_features to train on them."})
    if not chosen:
        raise ValidationError({"features": "No usable feature columns: list some, or set column roles."})

    if "sensitive_features" in spec and spec["sensitive_features"] is not None:
        sensitive = _str_list(spec["sensitive_features"], "sensitive_features")
    else:
        sensitive = [c["name"] for c in version.columns if c.get("role") == "sensitive"]
    for name in sensitive:
        if version.column(name) is None:
            raise ValidationError({"sensitive_features": f"The dataset version has no column {name!r}."})
        if name == target:
            raise ValidationError({"sensitive_features": "The target cannot be a sensitive feature."})

    params = params_check(estimator, spec.get("params"))
    params_for_target(params=params, task=task, version=version, target=target)
    split = _split_check(spec.get("split"), task)

    metrics = spec.get("metrics")
    if metrics is None:
        metrics = list(DEFAULT_METRICS[task])
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ValidationError({"metrics": "Must be a non-empty list of metric names."})
    for m in metrics:
        if m not in METRICS[task]:
            raise ValidationError({"metrics": f"{m!r} is not a {task} metric; choose from "
                                              f"{', '.join(METRICS[task])}."})
    if NEEDS_SCORES & set(metrics):
        probe = estimator_class(estimator)().set_params(**params_restore(estimator, params))
        if not (hasattr(probe, "predict_proba") or hasattr(probe, "decision_function")):
            raise ValidationError({"metrics": f"{', '.join(sorted(NEEDS_SCORES & set(metrics)))} needs "
                                              f"scores, which {estimator} does not give with these params."})
        if "log_loss" in metrics and not hasattr(probe, "predict_proba"):
            raise ValidationError({"metrics": f"log_loss needs probabilities; {estimator} does not give "
                                              "them with these params."})
    clean = {
        "dataset_version": version.pk, "target": target, "features": features,
        "sensitive_features": sensitive, "task": task, "estimator": estimator, "params": params,
        "split": split, "metrics": list(dict.fromkeys(metrics)), "allow_pii_features": allow_pii,
    }
    return clean, version


def params_restore(estimator: str, params: dict[str, Any]) -> dict[str, Any]:
    """JSON lists back to tuples where the estimator's default is a tuple (e.g. hidden sizes)."""
    defaults = estimator_class(estimator)().get_params(deep=False)
    return {k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
            for k, v in params.items()}


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


# --- the worker ----------------------------------------------------------------------------


class FitInterrupted(BaseException):
    """Raised in the main thread when the job is cancelled mid-fit.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception``
    inside scikit-learn or SciPy swallows it.
    """


CANCEL_POLL_SECONDS = 0.5
# How long a cancelled fit may stay inside one C call (libsvm, liblinear, SGD's
# epochs) before its pool process is ended instead.
CANCEL_GRACE_SECONDS = 5.0
# SIGUSR1 is taken: billiard raises soft time limits with it in pool processes.
INTERRUPT_SIGNAL = signal.SIGUSR2
_EXIT_CANCELLED = 75

_process = {"hard_stop": False, "installed": False, "previous": None, "watch": None}
logger = logging.getLogger(__name__)


def allow_hard_stop() -> None:
    """Called in each prefork pool process: ending it is safe, the pool starts a new one."""
    _process["hard_stop"] = True


def _on_interrupt(signum, frame):
    watch = _process["watch"]
    if watch is not None and watch.armed:
        watch.armed = False  # raise once, whatever else arrives
        watch.interrupted.set()
        raise FitInterrupted()
    previous = _process["previous"]
    if callable(previous):
        previous(signum, frame)


class _FitWatch:
    """While a fit runs, a thread watches for a cancel (or for the attempt being re-queued).

    On a cancel it interrupts the main thread with a signal whose handler
    raises FitInterrupted; Python runs the handler between bytecodes, which
    scikit-learn's per-tree, per-stage and per-iteration loops reach often. A
    fit inside one long C call never gets there: in a prefork pool process the
    thread then marks the job cancelled and ends the process, the pool starts a
    new one, and the redelivered message (acks_late) finds the job ended and is
    skipped. Elsewhere (the solo pool, a thread) the cancel lands when the fit
    returns. Signal handlers can only be set from the main thread, so off it
    the cancel waits for the next progress report. (The heartbeat is job_run's.)
    """

    def __init__(self, job: Job):
        self.job_id = job.pk
        self.attempt = job.attempts
        self.sweep_id = job.params.get("sweep_id")
        self.armed = False
        self.interrupted = threading.Event()
        self.stop = threading.Event()
        self.main_ident = threading.main_thread().ident
        self.thread = threading.Thread(target=self._watch, name=f"watch-job-{job.pk}", daemon=True)

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            if not _process["installed"]:
                _process["previous"] = signal.signal(INTERRUPT_SIGNAL, _on_interrupt)
                _process["installed"] = True
            _process["watch"] = self
            self.armed = True
        self.thread.start()

    def close(self) -> None:
        self.armed = False
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        _process["watch"] = None

    def _cancelled(self) -> bool:
        row = Job.objects.filter(pk=self.job_id).values_list("status", "cancel_requested", "attempts").first()
        # No row visible (deleted, or not committed yet): nothing says stop.
        return row is not None and (row[1] or row[0] != JobStatus.RUNNING or row[2] != self.attempt)

    def _watch(self) -> None:
        cancelled_at = None
        try:
            while not self.stop.wait(CANCEL_POLL_SECONDS):
                now = time.monotonic()
                if cancelled_at is None:
                    try:
                        if self._cancelled():
                            cancelled_at = now
                            if self.armed:
                                signal.pthread_kill(self.main_ident, INTERRUPT_SIGNAL)
                    except DatabaseError:
                        # A lost connection must not end the fit; the next poll reconnects.
                        logger.warning("Job %s: could not read its row while fitting", self.job_id,
                                       exc_info=True)
                        connection.close()
                elif self.interrupted.is_set():
                    return
                elif _process["hard_stop"] and now - cancelled_at >= CANCEL_GRACE_SECONDS:
                    self._end_process()
        finally:
            connection.close()  # this thread's own connection

    def _end_process(self) -> None:
        jobs.job_mark_cancelled(job=Job(pk=self.job_id, attempts=self.attempt),
                                message="Cancelled (the fit was stopped by ending its worker process)")
        if self.sweep_id:
            from training import sweeps

            sweeps.sweep_advance(sweep_id=self.sweep_id)
        logger.warning("Job %s was cancelled inside a fit that cannot be interrupted; ending this "
                       "worker process so the pool starts a fresh one.", self.job_id)
        connection.close()
        os._exit(_EXIT_CANCELLED)


def make_estimator(estimator: str, params: dict[str, Any], seed: int):
    est = estimator_class(estimator)()
    params = params_restore(estimator, params)
    if "random_state" in est.get_params(deep=False) and "random_state" not in params:
        params["random_state"] = seed  # the split seed makes the estimator repeatable too
    return est.set_params(**params)


def build_pipeline(*, estimator: str, params: dict[str, Any], seed: int, numeric: list[str],
                   categorical: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    est = make_estimator(estimator, params, seed)
    transformers = []
    if numeric:
        transformers.append(("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                                              ("scale", StandardScaler())]), numeric))
    if categorical:
        transformers.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical))
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    return Pipeline([("preprocess", pre), ("model", est)])


def _scores(model, X):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X), True
    if hasattr(model, "decision_function"):
        return model.decision_function(X), False
    return None, False


def compute_metrics(task: str, names: list[str], model, X, y, log) -> dict[str, float]:
    from sklearn import metrics as skm

    out: dict[str, float] = {}
    pred = model.predict(X)
    if task == REGRESSION:
        mse = skm.mean_squared_error(y, pred)
        table = {"r2": lambda: skm.r2_score(y, pred), "mse": lambda: mse, "rmse": lambda: math.sqrt(mse),
                 "mae": lambda: skm.mean_absolute_error(y, pred),
                 "median_ae": lambda: skm.median_absolute_error(y, pred)}
        return {m: float(table[m]()) for m in names}
    classes = list(model.classes_)
    binary = len(classes) == 2
    avg = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "weighted"}
    scores, is_proba = (None, False)
    if NEEDS_SCORES & set(names):
        scores, is_proba = _scores(model, X)
    for m in names:
        if m == "accuracy":
            out[m] = skm.accuracy_score(y, pred)
        elif m == "balanced_accuracy":
            out[m] = skm.balanced_accuracy_score(y, pred)
        elif m in ("precision", "recall", "f1"):
            fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[m]
            out[m] = fn(y, pred, zero_division=0, **avg)
        elif m == "roc_auc":
            if len(set(y)) < 2:
                log(f"{m} skipped: this split holds one class only")
            elif binary:
                s = scores[:, 1] if is_proba else scores
                out[m] = skm.roc_auc_score(y, s)
            elif is_proba:
                out[m] = skm.roc_auc_score(y, scores, multi_class="ovr", average="weighted", labels=classes)
            else:
                log(f"{m} skipped: multiclass AUC needs probabilities")
        elif m == "log_loss":
            out[m] = skm.log_loss(y, scores, labels=classes)
    return {k: float(v) for k, v in out.items()}


def _fig(data: list[dict], layout: dict) -> bytes:
    return json.dumps({"data": data, "layout": layout}).encode()


def classification_plots(model, X, y) -> dict[str, bytes]:
    from sklearn import metrics as skm

    classes = list(model.classes_)
    labels = [str(c) for c in classes]
    cm = skm.confusion_matrix(y, model.predict(X), labels=classes)
    plots = {"plots/confusion_matrix.json": _fig(
        [{"type": "heatmap", "z": cm.tolist(), "x": labels, "y": labels, "colorscale": "Blues",
          "text": cm.tolist(), "texttemplate": "%{text}", "hovertemplate": "true %{y}<br>predicted %{x}"
          "<br>%{z} rows<extra></extra>"}],
        {"title": {"text": "Confusion matrix (test split)"}, "xaxis": {"title": {"text": "Predicted"}},
         "yaxis": {"title": {"text": "True"}, "autorange": "reversed"}},
    )}
    scores, is_proba = _scores(model, X)
    if scores is None or len(set(y)) < 2:
        return plots
    traces = []
    if len(classes) == 2:
        s = scores[:, 1] if is_proba else scores
        fpr, tpr, _ = skm.roc_curve(y, s, pos_label=classes[1])
        auc = skm.auc(fpr, tpr)
        traces.append({"type": "scatter", "mode": "lines", "x": fpr.tolist(), "y": tpr.tolist(),
                       "name": f"{labels[1]} (AUC {auc:.3f})"})
    elif is_proba:
        y_arr = np.asarray(y)
        for i, c in enumerate(classes[:10]):
            fpr, tpr, _ = skm.roc_curve(y_arr == c, scores[:, i])
            traces.append({"type": "scatter", "mode": "lines", "x": fpr.tolist(), "y": tpr.tolist(),
                           "name": f"{labels[i]} vs rest (AUC {skm.auc(fpr, tpr):.3f})"})
    if traces:
        traces.append({"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "chance",
                       "line": {"dash": "dash", "color": "#999"}})
        plots["plots/roc_curve.json"] = _fig(traces, {
            "title": {"text": "ROC curve (test split)"},
            "xaxis": {"title": {"text": "False positive rate"}},
            "yaxis": {"title": {"text": "True positive rate"}}})
    return plots


def regression_plots(model, X, y, seed: int) -> dict[str, bytes]:
    pred = model.predict(X)
    y = np.asarray(y, dtype=float)
    idx = np.arange(len(y))
    if len(idx) > MAX_PLOT_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(idx, MAX_PLOT_POINTS, replace=False))
    return {"plots/residuals.json": _fig(
        [{"type": "scattergl", "mode": "markers", "x": pred[idx].tolist(), "y": (y[idx] - pred[idx]).tolist(),
          "marker": {"size": 4, "opacity": 0.6}, "name": "residual"}],
        {"title": {"text": "Residuals (test split)"}, "xaxis": {"title": {"text": "Predicted"}},
         "yaxis": {"title": {"text": "Actual - predicted"}}},
    ), "plots/predicted_vs_actual.json": _fig(
        [{"type": "scattergl", "mode": "markers", "x": y[idx].tolist(), "y": pred[idx].tolist(),
          "marker": {"size": 4, "opacity": 0.6}, "name": "test rows"},
         {"type": "scatter", "mode": "lines", "x": [float(y.min()), float(y.max())],
          "y": [float(y.min()), float(y.max())], "name": "ideal", "line": {"dash": "dash", "color": "#999"}}],
        {"title": {"text": "Predicted vs actual (test split)"}, "xaxis": {"title": {"text": "Actual"}},
         "yaxis": {"title": {"text": "Predicted"}}},
    )}


def _output_columns(preprocess) -> list[str]:
    """The input column behind each output of the fitted preprocessing, in output order."""
    out: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        # The imputer drops a column with no values at all; the encoder sees what it kept.
        kept = [str(c) for c in transformer.named_steps["impute"].get_feature_names_out(columns)]
        if name == "cat":
            categories = transformer.named_steps["onehot"].categories_
            for column, values in zip(kept, categories, strict=True):
                out.extend([column] * len(values))
        else:
            out.extend(kept)
    return out


def preprocess_output_columns(preprocess) -> list[str]:
    """The input column behind each output of a training pipeline's fitted preprocessing (a
    one-hot column's outputs all name it): explanations sum their SHAP values back to it."""
    return _output_columns(preprocess)


def feature_importances(pipeline, *,
                        by_column: set[str] | frozenset = frozenset()) -> list[dict[str, Any]] | None:
    """Importances by model input, most important first; a column in ``by_column`` (PII) is one entry.

    One-hot outputs are named after their category (``cat__email_ada@example.com``);
    a PII column's outputs are summed under the column's own name so no value is named.
    """
    model = pipeline.named_steps["model"]
    if hasattr(model, "feature_importances_"):
        values = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        coef = np.asarray(model.coef_, dtype=float)
        values = np.abs(coef) if coef.ndim == 1 else np.abs(coef).mean(axis=0)
    else:
        return None
    preprocess = pipeline.named_steps["preprocess"]
    names = [str(n) for n in preprocess.get_feature_names_out()]
    owners = _output_columns(preprocess)
    if len(owners) != len(names):
        raise RuntimeError("The preprocessing's outputs could not be matched to its input columns.")
    totals: dict[str, float] = {}
    for name, owner, value in zip(names, owners, values.tolist(), strict=True):
        key = owner if owner in by_column else name
        totals[key] = totals.get(key, 0.0) + float(value)
    pairs = sorted(totals.items(), key=lambda p: -p[1])
    return [{"feature": n, "importance": v} for n, v in pairs]


def _dtype_of(df, name: str, version: DatasetVersion) -> str:
    col = version.column(name)
    return col["dtype"] if col else str(df[name].dtype)


@dataclass
class TrainingSplit:
    """A training job's data, split as the job split it: the frames the pipeline saw."""

    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    y: Any  # every row's target (after rows with no target were dropped)
    numeric: list[str]
    categorical: list[str]
    dropped: int  # rows left out for having no target
    dtypes: dict[str, str]  # the features' and the target's dtypes
    # Columns asked for beside the features (sensitive features), for the test rows, same index.
    extra_test: Any = None


def training_split(*, spec: dict[str, Any], version: DatasetVersion, features: list[str],
                   extra_columns: list[str] | tuple[str, ...] = ()) -> TrainingSplit:
    """Read a training spec's data and split it by the spec's split and seed.

    The one definition of a training job's held-out split: the training job
    calls it, and the fairness audit and explanation re-derive the same test
    rows from a run's recorded spec and features. ``extra_columns`` are read
    beside the features and returned for the test rows; they change nothing
    about the split, which depends on the row count, the target and the seed.
    """
    from sklearn.model_selection import train_test_split

    target, task = spec["target"], spec["task"]
    extras = [c for c in extra_columns if c not in features and c != target]
    df = datasets.version_read_frame(version, columns=[*features, target, *extras])
    missing = int(df[target].isna().sum())
    if missing:
        df = df[df[target].notna()].reset_index(drop=True)
    y = df[target]
    if task == CLASSIFICATION:
        if _dtype_of(df, target, version) in ("string", "bool"):
            y = y.map(str)
        counts = y.value_counts()
        if len(counts) < 2:
            raise ValidationError({"target": f"{target!r} has a single class ({counts.index[0]!r}); "
                                             "classification needs at least two."})
        if spec["split"]["stratify"] and counts.min() < 2:
            raise ValidationError({"split.stratify": f"Class {counts.idxmin()!r} has one row; a stratified "
                                                     "split needs at least two of every class."})
    else:
        y = y.astype(float)
    if len(df) < 4:
        raise ValidationError({"dataset_version": "Too few rows with a target to split and train."})
    X = df[features].copy()
    numeric = [f for f in features if _dtype_of(df, f, version) in ("int64", "float64")]
    categorical = [f for f in features if f not in numeric]
    for name in categorical:
        X[name] = X[name].map(lambda v: v if v != v or v is None else str(v))

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=spec["split"]["test_size"], random_state=spec["split"]["seed"],
            stratify=y if spec["split"]["stratify"] else None,
        )
    except ValueError as exc:
        raise ValidationError({"split": str(exc)}) from None
    extra_test = df.loc[X_test.index, [c for c in extra_columns if c != target]] if extra_columns else None
    dtypes = {name: _dtype_of(df, name, version) for name in [*features, target]}
    return TrainingSplit(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, y=y,
                         numeric=numeric, categorical=categorical, dropped=missing, dtypes=dtypes,
                         extra_test=extra_test)


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
    watch = _FitWatch(job)
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
        files["plots/feature_importances.json"] = _fig(
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
    pairs = services.param_pairs_parse(params)
    now = services.now_ms()
    points = services.metric_points_parse(
        [{"key": k, "value": v, "step": 0, "timestamp": now} for k, v in sorted(metrics.items())]
        # How long the fit took describes the machine, not the model: under system/ it stays out of
        # leaderboards and comparisons, and every other metric is the same on a re-run.
        + [{"key": "system/fit_seconds", "value": fit_seconds, "step": 0, "timestamp": now}]
    )
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
            start_time=int(started * 1000), tags=tags, seed=spec["split"]["seed"],
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
