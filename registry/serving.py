"""Real-time serving: resolve a version, load it once per process, predict, log.

Which version an alias means is read from the database on every request, so a
moved alias serves its new version on the next request in every process; the
loaded model itself is cached per process by version id (a version's files
never change after its checks), and the least recently used one is dropped.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from cachetools import LRUCache
from django.conf import settings
from django.utils import timezone

from accounts.selectors import project_access_resolve
from accounts.services import api_token_used
from core.errors import Conflict, NotFound, PayloadTooLarge
from registry import signature as sig
from registry.loading import ModelLoadRefused, estimator_load, onnx_bytes_load
from registry.models import (
    ALIAS_RE,
    ModelAlias,
    ModelVersion,
    OutputKind,
    RegisteredModel,
    Runtime,
    VersionStatus,
)
from registry.onnx_export import feed_build, input_names, session_create
from registry.prediction_log import Entry, prediction_log_enqueue
from registry.selectors import VERSION_DIGITS_MAX, is_version_number

_ALIAS = re.compile(ALIAS_RE)

# Observers of every served request that reached a version: (version id, rows, seconds, outcome
# "ok" | "refused" | "failed"). Monitoring registers its operational-health recorder here; an
# observer runs on the request path, so it may only count in memory.
_observers: list = []


def serving_observer_register(observer) -> None:
    if observer not in _observers:
        _observers.append(observer)


def serving_observe(version_id: int, rows: int, seconds: float, outcome: str) -> None:
    for observer in _observers:
        observer(version_id, rows, seconds, outcome)


class Predictor:
    runtime = ""

    def __init__(self, version: ModelVersion):
        self.version_id = version.pk
        self.columns = version.columns
        self.classifier = version.output_kind == OutputKind.CLASSIFICATION
        self.classes = list(version.classes or [])
        self.numbers = sig.number_columns(self.columns)
        # What the prediction log keeps, with and without PII columns: (their positions, names).
        public = [j for j, c in enumerate(self.columns) if not c.get("pii")]
        self.logged = {True: (None, [c["name"] for c in self.columns]),
                       False: (None if len(public) == len(self.columns) else public,
                               [self.columns[j]["name"] for j in public])}

    def predict(self, parsed: sig.ParsedInput) -> tuple[Any, np.ndarray | None]:
        """Labels (a number array, or a list for text labels) and, for classifiers, class
        probabilities (a float array), one row per input row."""
        raise NotImplementedError


def _labels(values) -> Any:
    labels = np.ascontiguousarray(values).ravel()
    return labels if labels.dtype.kind in "biuf" else labels.tolist()


def _probabilities(values) -> np.ndarray:
    # In the model's own float type, so a float32 probability is written as the float32 it
    # is ("0.97", not "0.9700000286102295").
    array = np.ascontiguousarray(values)
    return array if array.dtype.kind == "f" else array.astype(np.float64)


class OnnxPredictor(Predictor):
    runtime = Runtime.ONNX

    def __init__(self, version: ModelVersion):
        super().__init__(version)
        self.session = session_create(onnx_bytes_load(version))
        self.input_mode = version.signature.get("input_mode", "columns")
        self.fills = version.signature.get("onnx_fills") or {}
        self.names = input_names(self.session)
        # A classifier without predict_proba (hinge SGD, LinearSVC) outputs decision scores there.
        self.probabilities = self.classifier and version.signature.get("onnx_probabilities", True)

    def predict(self, parsed):
        outputs = self.session.run(None, feed_build(self.columns, parsed, self.input_mode, self.fills,
                                                    self.names))
        labels = _labels(outputs[0])
        if self.probabilities and len(outputs) > 1:
            return labels, _probabilities(outputs[1])
        return labels, None


class SklearnPredictor(Predictor):
    runtime = Runtime.SKLEARN

    def __init__(self, version: ModelVersion):
        super().__init__(version)
        self.estimator = estimator_load(version)

    def predict(self, parsed):
        frame = parsed.frame()
        labels = _labels(self.estimator.predict(frame))
        if self.classifier and hasattr(self.estimator, "predict_proba"):
            return labels, _probabilities(self.estimator.predict_proba(frame))
        return labels, None


class _PredictorCache(LRUCache):
    """The loaded models, least recently used evicted first; its lock guards every access,
    reads included, because a read reorders the cache while another thread may evict."""

    def popitem(self):
        pk, predictor = super().popitem()
        _load_locks.pop(pk, None)
        return pk, predictor


_cache_lock = threading.Lock()
_cache: _PredictorCache | None = None
# One lock per version being loaded, so ten requests for a cold model load it once.
_load_locks: dict[int, threading.Lock] = {}


def _cached(pk: int) -> Predictor | None:
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = _PredictorCache(maxsize=settings.SERVING_CACHE_MODELS)
        return _cache.get(pk)


def predictor_get(version: ModelVersion) -> Predictor:
    predictor = _cached(version.pk)
    if predictor is not None:
        return predictor
    with _cache_lock:
        lock = _load_locks.setdefault(version.pk, threading.Lock())
    with lock:
        predictor = _cached(version.pk)
        if predictor is None:
            cls = OnnxPredictor if version.runtime == Runtime.ONNX else SklearnPredictor
            try:
                predictor = cls(version)
            except ModelLoadRefused as exc:
                raise Conflict(f"Version {version.version} cannot be loaded: {exc}") from None
            with _cache_lock:
                _cache[version.pk] = predictor
    return predictor


def predictor_cache_clear() -> None:
    global _cache
    with _cache_lock:
        _cache = None
        _load_locks.clear()


@dataclass(frozen=True)
class Target:
    """What one predict request needs to know about the version it is served by."""

    version_id: int
    version: int
    status: str
    model_name: str
    log_pii: bool


# The model and the version ``ref`` names, joined to the project the access query finds as ``p``.
_MODEL_COLUMNS = "rm.id, rm.log_pii, v.id, v.version, v.status"


def _model_joins(*, by_number: bool) -> str:
    model, version, alias = (RegisteredModel._meta.db_table, ModelVersion._meta.db_table,
                             ModelAlias._meta.db_table)
    if by_number:
        pick = f"LEFT JOIN {version} v ON v.model_id = rm.id AND v.version = %s"
    else:
        pick = (f"LEFT JOIN {alias} a ON a.model_id = rm.id AND a.name = %s "
                f"LEFT JOIN {version} v ON v.id = a.version_id")
    return f"LEFT JOIN {model} rm ON rm.project_id = p.id AND rm.name = %s {pick}"


def serving_target_resolve(*, slug: str, model_name: str, ref: str, token: str | None = None,
                           user=None) -> Target:
    """Who is asking (a bearer token, or a session's user) and which version ``ref`` names now.

    This runs on every prediction, so one query answers all of it: the token and
    whether the user may read the project, as accounts.selectors decides for the
    whole API (401 for a token that is not usable, 404 for a project the user
    may not read), then the model and the alias or version number. Aliases are
    read fresh each time, so a moved alias serves its new version on the next
    request in every process.
    """
    by_number = is_version_number(ref)
    key: int | str = ref
    if by_number:
        key = int(ref) if len(ref) <= VERSION_DIGITS_MAX else -1  # -1 names no version
    now = timezone.now()
    access, row = project_access_resolve(
        slug=slug, token=token, user=user, columns=_MODEL_COLUMNS, joins=_model_joins(by_number=by_number),
        params=(model_name, key), now=now,
    )
    if access.token_id is not None:
        api_token_used(token_id=access.token_id, last_used_at=access.token_last_used_at, now=now)
    model_id, log_pii, version_id, number, status = row
    if model_id is None:
        raise NotFound(f"No model named '{model_name}' in this project.")
    # A ref no alias may be named (e.g. "champion\n") serves nothing, even where a row stored
    # before names were checked to their end carries it.
    if version_id is None or not (by_number or _ALIAS.fullmatch(ref)):
        what = f"version {ref[:20]}" if by_number else f"alias '{ref[:100]}'"
        raise NotFound(f"Model '{model_name}' has no {what}.")
    return Target(version_id=version_id, version=number, status=status, model_name=model_name,
                  log_pii=bool(log_pii))


def _request_id(given: str | None) -> str:
    if given:
        try:
            return uuid.UUID(given).hex
        except ValueError:
            pass
    return uuid.uuid4().hex


def _predictor_for(target: Target) -> Predictor:
    predictor = _cached(target.version_id)
    if predictor is not None:
        return predictor
    version = ModelVersion.objects.select_related("model").get(pk=target.version_id)
    return predictor_get(version)


def predict(*, target: Target, body: Any, request_id: str | None = None) -> dict:
    """Score a request's rows with the target version and queue them for the prediction log.

    The answer holds numpy arrays; encode it with ``orjson.OPT_SERIALIZE_NUMPY``.
    """
    if target.status != VersionStatus.READY:
        version = ModelVersion.objects.get(pk=target.version_id)
        reason = version.status_message
        raise Conflict(
            f"Version {target.version} of {target.model_name} is {version.get_status_display()}"
            + (f": {reason}" if reason else ".")
        )
    predictor = _predictor_for(target)
    try:
        parsed = sig.request_parse(body, predictor.columns, max_rows=settings.SERVING_MAX_ROWS,
                                   numbers=predictor.numbers)
    except sig.TooManyRows as exc:
        raise PayloadTooLarge(str(exc)) from None
    labels, probabilities = predictor.predict(parsed)
    rid = _request_id(request_id)
    positions, names = predictor.logged[target.log_pii]
    entry = Entry(version_id=target.version_id, request_id=rid, created_at=timezone.now(), rows=parsed.n_rows,
                  names=names, predictions=labels, probabilities=probabilities)
    if parsed.matrix is not None:
        entry.matrix = parsed.matrix if positions is None else parsed.matrix[:, positions]
    else:
        entry.columns = {n: parsed.raw[n] for n in names}
    prediction_log_enqueue(entry)
    body_out: dict[str, Any] = {"predictions": labels}
    if probabilities is not None:
        body_out["probabilities"] = probabilities
        body_out["classes"] = predictor.classes
    body_out.update(model_version=target.version, request_id=rid, runtime=predictor.runtime)
    return body_out
