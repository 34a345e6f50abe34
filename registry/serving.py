"""Real-time serving: resolve a version, load it once per process, predict, log.

Which version an alias means is read from the database on every request, so a
moved alias serves its new version on the next request in every process; the
loaded model itself is cached per process by version id (a version's files
never change after its checks), and the least recently used one is dropped.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any

import numpy as np
from django.conf import settings
from django.http import Http404
from django.utils import timezone

from accounts.errors import Conflict, PayloadTooLarge
from accounts.models import Project
from registry import signature as sig
from registry.loading import ModelLoadRefused, estimator_load, onnx_bytes_load
from registry.models import ModelAlias, ModelVersion, OutputKind, RegisteredModel, Runtime, VersionStatus
from registry.onnx_export import feed_build, session_create
from registry.prediction_log import Entry, prediction_log_enqueue

# Big JSON fields a request never needs.
_DEFERRED = ("example", "verification", "metrics", "description", "status_message", "runtime_reason")


class Predictor:
    runtime = ""

    def __init__(self, version: ModelVersion):
        self.version_id = version.pk
        self.columns = version.columns
        self.classifier = version.output_kind == OutputKind.CLASSIFICATION
        self.classes = list(version.classes or [])

    def predict(self, parsed: sig.ParsedInput) -> tuple[list, list | None]:
        raise NotImplementedError


class OnnxPredictor(Predictor):
    runtime = Runtime.ONNX

    def __init__(self, version: ModelVersion):
        super().__init__(version)
        self.session = session_create(onnx_bytes_load(version))
        self.input_mode = version.signature.get("input_mode", "columns")

    def predict(self, parsed):
        outputs = self.session.run(None, feed_build(self.columns, parsed.arrays, self.input_mode))
        labels = np.asarray(outputs[0]).ravel().tolist()
        if self.classifier and len(outputs) > 1:
            return labels, np.asarray(outputs[1], dtype=np.float64).tolist()
        return labels, None


class SklearnPredictor(Predictor):
    runtime = Runtime.SKLEARN

    def __init__(self, version: ModelVersion):
        super().__init__(version)
        self.estimator = estimator_load(version)

    def predict(self, parsed):
        frame = parsed.frame()
        labels = np.asarray(self.estimator.predict(frame)).ravel().tolist()
        if self.classifier and hasattr(self.estimator, "predict_proba"):
            return labels, np.asarray(self.estimator.predict_proba(frame), dtype=np.float64).tolist()
        return labels, None


_cache: OrderedDict[int, Predictor] = OrderedDict()
_cache_lock = threading.Lock()
_load_locks: dict[int, threading.Lock] = {}


def predictor_get(version: ModelVersion) -> Predictor:
    predictor = _cache.get(version.pk)
    if predictor is not None:
        _cache.move_to_end(version.pk)
        return predictor
    with _cache_lock:
        lock = _load_locks.setdefault(version.pk, threading.Lock())
    with lock:
        predictor = _cache.get(version.pk)
        if predictor is None:
            cls = OnnxPredictor if version.runtime == Runtime.ONNX else SklearnPredictor
            try:
                predictor = cls(version)
            except ModelLoadRefused as exc:
                raise Conflict(f"Version {version.version} cannot be loaded: {exc}") from None
            with _cache_lock:
                _cache[version.pk] = predictor
                while len(_cache) > settings.SERVING_CACHE_MODELS:
                    old_pk, _ = _cache.popitem(last=False)
                    _load_locks.pop(old_pk, None)
    return predictor


def predictor_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()
        _load_locks.clear()


def serving_version_resolve(*, project: Project, model_name: str, ref: str) -> ModelVersion:
    """The version ``ref`` (a number or an alias) names now; 404 if there is none."""
    if ref.isdigit():
        version = (
            ModelVersion.objects.defer(*_DEFERRED).select_related("model")
            .filter(model__project=project, model__name=model_name, version=int(ref)).first()
        )
    else:
        alias = (
            ModelAlias.objects.select_related("version__model").defer(
                *(f"version__{f}" for f in _DEFERRED)
            ).filter(model__project=project, model__name=model_name, name=ref).first()
        )
        version = alias.version if alias else None
    if version is None:
        if not RegisteredModel.objects.filter(project=project, name=model_name).exists():
            raise Http404(f"No model named '{model_name}' in this project.")
        what = f"version {ref}" if ref.isdigit() else f"alias '{ref}'"
        raise Http404(f"Model '{model_name}' has no {what}.")
    return version


def _request_id(given: str | None) -> str:
    if given:
        try:
            return uuid.UUID(given).hex
        except ValueError:
            pass
    return uuid.uuid4().hex


def predict(*, version: ModelVersion, body: Any, request_id: str | None = None) -> dict:
    """Score a request's rows with ``version`` and queue them for the prediction log."""
    if version.status != VersionStatus.READY:
        reason = ModelVersion.objects.filter(pk=version.pk).values_list("status_message", flat=True).first()
        raise Conflict(
            f"Version {version.version} of {version.model.name} is {version.get_status_display()}"
            + (f": {reason}" if reason else ".")
        )
    predictor = predictor_get(version)
    try:
        parsed = sig.request_parse(body, predictor.columns, max_rows=settings.SERVING_MAX_ROWS)
    except sig.TooManyRows as exc:
        raise PayloadTooLarge(str(exc)) from None
    labels, probabilities = predictor.predict(parsed)
    rid = _request_id(request_id)
    log_pii = version.model.log_pii
    inputs = {c["name"]: parsed.raw[c["name"]] for c in predictor.columns if log_pii or not c.get("pii")}
    prediction_log_enqueue(Entry(
        version_id=version.pk, request_id=rid, created_at=timezone.now(), inputs=inputs,
        predictions=labels, probabilities=probabilities,
    ))
    body_out: dict[str, Any] = {"predictions": labels}
    if probabilities is not None:
        body_out["probabilities"] = probabilities
        body_out["classes"] = predictor.classes
    body_out.update(model_version=version.version, request_id=rid, runtime=predictor.runtime)
    return body_out
