"""scikit-learn autologging: after ``steward.autolog()`` (or ``steward.sklearn.autolog()``), fit logs.

Every outermost ``fit`` of a scikit-learn estimator logs:

* the estimator's params (``get_params(deep=True)``), as
  :func:`steward.keys.param_text` writes every param;
* ``training_score``: the estimator's own ``score`` on the training data;
* ``system/training_time_s``: the fit's wall time (a fact about the
  machine, not the model, hence ``system/``);
* the tags ``estimator_class`` (the public import path, e.g.
  ``sklearn.linear_model.LogisticRegression``) and ``estimator_name``;
* the fitted model as ``model/model.skops``.

A hyperparameter search (``GridSearchCV``, ``RandomizedSearchCV``: anything
with ``best_params_`` and ``cv_results_``) also logs ``best_<param>`` params,
the metric ``best_cv_score`` (``best_score_``), the artifact
``cv_results.csv``, and a child run per candidate (the best
``max_tuning_runs`` of them by rank) with its params and cross-validation
scores, nested under the search's run.

Fits nested inside another fit (a Pipeline's steps, a search's candidates)
are not logged on their own. Inside an active run autolog logs to that run;
otherwise each fit gets its own run, named after the estimator and what
tells it apart (its non-default params, else its short id).
"""

from __future__ import annotations

import csv
import functools
import importlib
import inspect
import io
import logging
import threading
import time
import uuid
from typing import Any

from steward import _active
from steward.errors import ConflictError
from steward.keys import PARAM_VALUE_MAX, param_text
from steward.options import RunOptions

log = logging.getLogger("steward")

RUN_NAME_MAX = 120
_state = threading.local()
_patched: dict[type, Any] = {}
_options: dict[str, Any] = {}


def autolog(
    *,
    log_models: bool = True,
    max_tuning_runs: int | None = 5,
    experiment: str | None = None,
    project: str | None = None,
    disable: bool = False,
) -> None:
    """Patch scikit-learn's estimators so that ``fit`` logs to Steward.

    Args:
        log_models: Store each fitted estimator as ``model/model.skops``.
        max_tuning_runs: How many of a search's candidates get a child run,
            best ranked first; ``None`` for all of them, 0 for none.
        experiment: The experiment of the runs autolog starts; default: the
            configured one (:func:`steward.set_experiment`), else "Default".
        project: Their project; default: the configured project.
        disable: Restore the original ``fit`` methods.
    """
    if disable:
        for cls, original in _patched.items():
            cls.fit = original
        _patched.clear()
        return
    from sklearn.utils import all_estimators

    _options.update(log_models=log_models, max_tuning_runs=max_tuning_runs, experiment=experiment,
                    project=project)
    for _, estimator_cls in all_estimators():
        owner = next((c for c in inspect.getmro(estimator_cls) if "fit" in c.__dict__), None)
        if owner is None or owner in _patched:
            continue
        original = owner.__dict__["fit"]
        _patched[owner] = original
        owner.fit = _wrap(original)


def _wrap(original):
    @functools.wraps(original)
    def fit(self, *args, **kwargs):
        depth = getattr(_state, "depth", 0)
        if depth:
            return original(self, *args, **kwargs)
        _state.depth = depth + 1
        try:
            return _fit_and_log(original, self, args, kwargs)
        finally:
            _state.depth = depth

    fit.__steward_autolog__ = True
    return fit


# Names and tags


def public_path(cls: type) -> str:
    """``module.Class`` through the shortest public module that exports the class.

    ``sklearn.linear_model._logistic.LogisticRegression`` becomes
    ``sklearn.linear_model.LogisticRegression``.
    """
    parts = cls.__module__.split(".")
    public = []
    for part in parts:
        if part.startswith("_"):
            break
        public.append(part)
    for end in range(len(public), 0, -1):
        module_name = ".".join(public[:end])
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if getattr(module, cls.__name__, None) is cls:
            return f"{module_name}.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _changed_params(estimator: Any) -> dict[str, Any]:
    """The estimator's own params that differ from its constructor's defaults (required ones included)."""
    try:
        params = estimator.get_params(deep=False)
        defaults = inspect.signature(type(estimator).__init__).parameters
    except Exception:  # noqa: BLE001 - a third-party estimator without sklearn's conventions
        return {}
    changed = {}
    for key, value in params.items():
        default = defaults[key].default if key in defaults else inspect.Parameter.empty
        if default is inspect.Parameter.empty or repr(default) != repr(value):
            changed[key] = value
    return changed


def _describe(value: Any) -> str | None:
    if hasattr(value, "get_params") and not isinstance(value, type):
        return type(value).__name__
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(step, tuple) and len(step) >= 2 and hasattr(step[1], "get_params") for step in value
    ):  # a Pipeline's or ColumnTransformer's steps
        return "+".join(type(step[1]).__name__ for step in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return param_text(value)
    return None


def run_name(estimator: Any, run_id: str | None = None) -> str:
    """A run name that tells fits apart: the class and its non-default params, else its short id."""
    inner, settings = [], []
    for key, value in _changed_params(estimator).items():
        text = _describe(value)
        if text is None:
            continue
        if hasattr(value, "get_params") or key in ("steps", "transformers"):
            inner.append(text)  # what a meta-estimator wraps comes first: "GridSearchCV SVC cv=3"
        else:
            settings.append(f"{key}={text}")
    parts = inner + settings
    name = " ".join([type(estimator).__name__, *parts])
    if not parts and run_id:
        name = f"{name} {run_id[:8]}"
    return name if len(name) <= RUN_NAME_MAX else name[: RUN_NAME_MAX - 3] + "..."


# Logging a fit


def _fit_and_log(original, estimator, args, kwargs):
    import steward

    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
    run = _active.active_run()
    own_run = None
    if run is None:
        run_id = None if _changed_params(estimator) else str(uuid.uuid4())
        own_run = run = steward.start_run(
            project=_options.get("project"), experiment=_options.get("experiment"),
            run_name=run_name(estimator, run_id), run_id=run_id,
        )
    try:
        started = time.perf_counter()
        result = original(estimator, *args, **kwargs)
        elapsed = time.perf_counter() - started
        _log_fit(run, estimator, X, y, elapsed)
    except BaseException as exc:
        if own_run is not None:
            own_run.__exit__(type(exc), exc, exc.__traceback__)
        raise
    if own_run is not None:
        own_run.end("FINISHED")
    return result


def _params_text(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params.items():
        text = param_text(value)
        out[key] = text if len(text) <= PARAM_VALUE_MAX else text[: PARAM_VALUE_MAX - 3] + "..."
    return out


def _log_fit(run, estimator, X, y, elapsed: float) -> None:
    cls = type(estimator)
    run.set_tags({"estimator_class": public_path(cls), "estimator_name": cls.__name__})
    try:
        run.log_params(_params_text(estimator.get_params(deep=True)))
    except ConflictError as exc:
        # A second fit in the same run with other params: keep the first, say so.
        log.warning("steward autolog: params not logged for this fit: %s", exc)
    run.log_metric("system/training_time_s", elapsed)
    if hasattr(estimator, "score"):
        try:
            score = estimator.score(X, y) if y is not None else estimator.score(X)
        except Exception as exc:  # noqa: BLE001 - not every estimator can score its training data
            log.debug("steward autolog: no training score for %s: %s", cls.__name__, exc)
        else:
            run.log_metric("training_score", float(score))
    if hasattr(estimator, "cv_results_") and hasattr(estimator, "best_params_"):
        _log_search(run, estimator)
    if _options.get("log_models", True):
        try:
            import skops.io
        except ImportError:
            log.warning("steward autolog: install skops (pip install 'steward-sdk[sklearn]') to log models.")
            return
        run.log_bytes(skops.io.dumps(estimator), "model/model.skops", "application/octet-stream")


# Hyperparameter searches

_TIMING_COLUMNS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")


def _cell(value: Any) -> Any:
    """One cv_results_ entry as plain Python: masked entries (a param a candidate lacks) become None."""
    import numpy as np

    if value is None or value is np.ma.masked:
        return None
    return value.item() if hasattr(value, "item") else value


def cv_results_csv(cv_results: dict[str, Any]) -> bytes:
    """``cv_results_`` as CSV: one row per candidate, one column per key (params as their text)."""
    columns = list(cv_results)
    count = len(cv_results["params"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for i in range(count):
        row = []
        for column in columns:
            value = _cell(cv_results[column][i]) if column != "params" else cv_results[column][i]
            row.append("" if value is None else param_text(value))
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8")


def _candidate_metrics(cv_results: dict[str, Any], i: int) -> dict[str, float]:
    metrics = {}
    for column, values in cv_results.items():
        if column == "params" or column.startswith("param_"):
            continue
        value = _cell(values[i])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        metrics[f"system/{column}" if column in _TIMING_COLUMNS else column] = value
    return metrics


def _log_search(run, search) -> None:
    import steward

    best = {f"best_{key}": value for key, value in search.best_params_.items()}
    try:
        run.log_params(_params_text(best))
    except ConflictError as exc:
        log.warning("steward autolog: best params not logged: %s", exc)
    if getattr(search, "best_score_", None) is not None:
        run.log_metric("best_cv_score", float(search.best_score_))
    results = search.cv_results_
    run.log_bytes(cv_results_csv(results), "cv_results.csv", "text/csv")

    limit = _options.get("max_tuning_runs", 5)
    refit = search.refit if isinstance(search.refit, str) else "score"
    rank_key = f"rank_test_{refit}" if f"rank_test_{refit}" in results else "rank_test_score"
    order = list(range(len(results["params"])))
    if rank_key in results:
        order.sort(key=lambda i: (int(results[rank_key][i]), i))
    if limit is not None:
        order = order[: max(0, limit)]
    base = getattr(search, "estimator", None)
    base_name = type(base).__name__ if base is not None else type(search).__name__
    for i in order:
        candidate = results["params"][i]
        words = " ".join(f"{k}={param_text(v)}" for k, v in candidate.items())
        name = f"{base_name} {words}".strip()
        options = RunOptions(project=run.project, experiment=run.experiment, parent_run_id=run.id,
                             run_name=name if len(name) <= RUN_NAME_MAX else name[: RUN_NAME_MAX - 3] + "...",
                             capture=False, log_system_metrics=False)
        with steward.Run(run.settings, options) as child:
            child.log_params(_params_text(candidate))
            child.log_metrics(_candidate_metrics(results, i))
            child.set_tags({"estimator_class": public_path(type(base)) if base is not None else "",
                            "estimator_name": base_name, "candidate_index": i})
