"""scikit-learn autologging: ``steward.sklearn.autolog()`` makes ``fit`` log itself.

After ``autolog()``, every outermost ``fit`` call of a scikit-learn estimator
logs the estimator's params (``get_params(deep=True)``), the training time
(metric ``training_time_s``), the score on the training data (metric
``training_score``, the estimator's own ``score``) and the fitted model as a
skops artifact (``model/model.skops``), plus the tags ``estimator_class`` and
``estimator_name``. Fits nested inside another fit (a Pipeline's steps, a
grid search's candidates) are not logged separately.

Inside an active run it logs to that run; otherwise each fit gets its own run
in the configured project and the ``experiment`` given to ``autolog``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from typing import Any

from steward import run as run_module
from steward.errors import ConflictError

log = logging.getLogger("steward")

PARAM_TEXT_MAX = 500
_state = threading.local()
_patched: dict[type, Any] = {}
_options: dict[str, Any] = {}


def autolog(
    *,
    log_models: bool = True,
    experiment: str | None = None,
    project: str | None = None,
    disable: bool = False,
) -> None:
    """Patch scikit-learn's estimators so that ``fit`` logs to Steward; ``disable=True`` undoes it."""
    if disable:
        for cls, original in _patched.items():
            cls.fit = original
        _patched.clear()
        return
    from sklearn.utils import all_estimators

    _options.update(log_models=log_models, experiment=experiment, project=project)
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


def _param_text(value: Any) -> str:
    text = repr(value) if not isinstance(value, (str, int, float, bool, type(None))) else value
    text = str(text)
    return text if len(text) <= PARAM_TEXT_MAX else text[: PARAM_TEXT_MAX - 3] + "..."


def _fit_and_log(original, estimator, args, kwargs):
    import steward

    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
    run = run_module.active_run()
    own_run = None
    if run is None:
        own_run = run = steward.start_run(
            project=_options.get("project"), experiment=_options.get("experiment"),
            name=type(estimator).__name__,
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


def _log_fit(run, estimator, X, y, elapsed: float) -> None:
    cls = type(estimator)
    run.set_tags({"estimator_class": f"{cls.__module__}.{cls.__qualname__}", "estimator_name": cls.__name__})
    try:
        params = {k: _param_text(v) for k, v in estimator.get_params(deep=True).items()}
        run.log_params(params)
    except ConflictError as exc:
        # A second fit in the same run with other params: keep the first, say so.
        log.warning("steward autolog: params not logged for this fit: %s", exc)
    run.log_metric("training_time_s", elapsed)
    if hasattr(estimator, "score"):
        try:
            score = estimator.score(X, y) if y is not None else estimator.score(X)
        except Exception as exc:  # noqa: BLE001 - not every estimator can score its training data
            log.debug("steward autolog: no training score for %s: %s", cls.__name__, exc)
        else:
            run.log_metric("training_score", float(score))
    if _options.get("log_models", True):
        try:
            import skops.io
        except ImportError:
            log.warning("steward autolog: install skops (pip install 'steward-sdk[sklearn]') to log models.")
            return
        run.log_bytes(skops.io.dumps(estimator), "model/model.skops", "application/octet-stream")
