"""Convert a fitted scikit-learn pipeline to ONNX and check it gives scikit-learn's answers.

A version is served by ONNX Runtime only if, on held-out rows, its labels are
identical to scikit-learn's (regression outputs within TOLERANCE) and its class
probabilities are within TOLERANCE of scikit-learn's.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from registry.signature import model_dtype

if TYPE_CHECKING:
    import pandas as pd

TOLERANCE = 1e-5
SINGLE_INPUT = "X"
# How a missing text value reaches the ONNX graph when no imputer fills it:
# string tensors cannot hold None, and requests may not contain NUL, so this
# never collides with a value (an encoder treats it as an unseen category).
MISSING_TEXT = "\x00"

logger = logging.getLogger(__name__)


@dataclass
class Conversion:
    ok: bool
    reason: str = ""
    onnx: bytes = b""
    # "tensor": one [n, k] double input named X; "tensor32": the same in float32;
    # "columns": one [n, 1] input per column; "columns32": the same with float32 numbers.
    input_mode: str = ""
    verification: dict = field(default_factory=dict)
    # input column -> the value its imputer fills in (text or number), done outside the graph
    fills: dict = field(default_factory=dict)
    # Whether the graph's second output is class probabilities (not decision scores).
    probabilities: bool = False


def session_create(onnx: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread and no spinning: a request is a few microseconds of work, and
    # idle threads spinning for the next one would burn the CPU we save.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(onnx, sess_options=options, providers=["CPUExecutionProvider"])


def input_names(session) -> list[str]:
    """The graph's input names, in the order of the signature's columns.

    The converter declares one input per column in the order it was given and
    makes each name a valid ONNX identifier (``od280/od315`` becomes
    ``od280_od315``), so a column is fed by position, never by its own name.
    """
    return [i.name for i in session.get_inputs()]


def feed_build(columns: list[dict], parsed, input_mode: str,
               fills: dict[str, str | float] | None = None,
               names: list[str] | None = None) -> dict[str, np.ndarray]:
    arrays = parsed.arrays
    if input_mode in ("tensor", "tensor32"):
        dtype = np.float32 if input_mode == "tensor32" else np.float64
        if parsed.matrix is not None:
            return {SINGLE_INPUT: parsed.matrix.astype(dtype, copy=False)}
        matrix = np.empty((len(arrays[columns[0]["name"]]), len(columns)), dtype=dtype)
        for j, column in enumerate(columns):
            matrix[:, j] = arrays[column["name"]]
        return {SINGLE_INPUT: matrix}
    feed = {}
    names = names or [c["name"] for c in columns]
    for column, name in zip(columns, names, strict=True):
        values = arrays[column["name"]]
        fill = (fills or {}).get(column["name"])
        if isinstance(fill, float) and values.dtype.kind == "f":
            values = np.where(np.isnan(values), fill, values)
        if input_mode == "columns32" and column["dtype"] == "double":
            values = values.astype(np.float32)
        elif model_dtype(column) == "string":
            text = fill if isinstance(fill, str) else MISSING_TEXT
            values = np.array([v if type(v) is str else text for v in values], dtype=object)
        feed[name] = values.reshape(-1, 1)
    return feed


def _initial_types(columns: list[dict], input_mode: str):
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    if input_mode == "tensor":
        return [(SINGLE_INPUT, DoubleTensorType([None, len(columns)]))]
    if input_mode == "tensor32":
        return [(SINGLE_INPUT, FloatTensorType([None, len(columns)]))]
    kinds = {"double": FloatTensorType if input_mode == "columns32" else DoubleTensorType,
             "long": Int64TensorType, "boolean": BooleanTensorType, "string": StringTensorType}
    return [(c["name"], kinds[model_dtype(c)]([None, 1])) for c in columns]


def _onnx_ready(estimator) -> tuple[Any, dict[str, str | float]]:
    """A copy without its column imputers, and the value each one fills in, by input column.

    ONNX Runtime has no text Imputer and no double one, so the fill is done
    while building the feed (``feed_build``) and the imputer step is dropped
    from the copy. Numbers then stay in double up to the model, as in
    scikit-learn, instead of being scaled in float32 (which moves values across
    a tree's thresholds and a neighbour's distances).
    """
    import copy
    import math

    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    clone = copy.deepcopy(estimator)
    fills: dict[str, str | float] = {}
    steps = clone.steps if isinstance(clone, Pipeline) else [("", clone)]
    for _, step in steps:
        if not isinstance(step, ColumnTransformer):
            continue
        for _, inner, cols in step.transformers_:
            if not (isinstance(inner, Pipeline) and len(inner.steps) > 1
                    and isinstance(inner.steps[0][1], SimpleImputer)):
                continue
            imputer = inner.steps[0][1]
            stats = getattr(imputer, "statistics_", None)
            names = list(cols) if isinstance(cols, (list, tuple)) else None
            missing = imputer.missing_values
            if (stats is None or names is None or len(names) != len(stats) or imputer.add_indicator
                    or not (missing is None or (isinstance(missing, float) and math.isnan(missing)))):
                continue
            values = stats.tolist()
            if stats.dtype == object and all(isinstance(v, str) for v in values):
                fills.update(zip(names, values, strict=True))
            elif stats.dtype.kind == "f" and all(math.isfinite(v) for v in values):
                fills.update(zip(names, map(float, values), strict=True))
            else:
                continue
            inner.steps = inner.steps[1:]
    if isinstance(clone, Pipeline) and _compares_in_float32(clone.steps[-1][1]):
        from skl2onnx.sklapi import CastTransformer

        # scikit-learn's trees cast their input to float32 after the preprocessing has run in
        # double; the graph does the same, rather than feeding the whole pipeline float32.
        clone.steps.insert(len(clone.steps) - 1, ("float32", CastTransformer(dtype=np.float32).fit(
            np.zeros((1, 1)))))
    return clone, fills


def _compares_in_float32(model) -> bool:
    from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor
    from sklearn.ensemble._forest import BaseForest
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.tree import BaseDecisionTree

    if isinstance(model, (AdaBoostClassifier, AdaBoostRegressor)):
        return all(isinstance(e, BaseDecisionTree) for e in model.estimators_)
    return isinstance(model, (BaseDecisionTree, BaseForest, BaseGradientBoosting))


def _final_step(estimator):
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _convert(estimator, columns: list[dict], input_mode: str) -> tuple[bytes, dict[str, str | float]]:
    from skl2onnx import convert_sklearn, get_model_alias
    from skl2onnx.common._registration import get_converter

    estimator, fills = _onnx_ready(estimator)
    options = {}
    final = _final_step(estimator)
    # Scores as one plain tensor, not ZipMap's list of dicts (which also has no double kernel).
    # Some converters (LinearSVC's) have no ZipMap and refuse the option, which skl2onnx's
    # pipeline parser gives every classifier it has no options for: they get their default.
    alias = get_model_alias(type(final))
    allowed = (get_converter(alias).get_allowed_options() or {}) if alias else {}
    if "zipmap" in allowed:
        options[id(final)] = {"zipmap": False}
    elif "nocl" in allowed:
        options[id(final)] = {"nocl": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(estimator, initial_types=_initial_types(columns, input_mode), options=options)
    return model.SerializeToString(), fills


def _input_modes(estimator, columns: list[dict]) -> list[str]:
    numeric = all(model_dtype(c) in ("double", "long") for c in columns)
    first = estimator.steps[0][1] if hasattr(estimator, "steps") else estimator
    selects_by_name = type(first).__name__ == "ColumnTransformer"
    if numeric and not selects_by_name:
        # One matrix input is several times faster to feed than a tensor per column.
        # float32 is what scikit-learn's trees compare in, so a bare tree ensemble
        # often matches scikit-learn only with float32 input.
        return ["tensor", "tensor32", "columns", "columns32"]
    # ONNX Runtime's Imputer has no double kernel, so imputing pipelines need float32.
    return ["columns", "columns32"]


def convert_and_verify(estimator, columns: list[dict], frame: pd.DataFrame | None, *,
                       classifier: bool, source: str) -> Conversion:
    if frame is None or len(frame) == 0:
        return Conversion(False, "No held-out rows to verify an ONNX export against (log the model "
                                 "with an input example or a training dataset version).")
    from registry.signature import ParsedInput

    model_name = type(_final_step(estimator)).__name__
    # What went wrong, for the server log; the version says it in one plain sentence.
    runtime_failed = False
    failed: Conversion | None = None
    for mode in _input_modes(estimator, columns):
        try:
            onnx, fills = _convert(estimator, columns, mode)
        except Exception as exc:  # noqa: BLE001 - any converter failure means "serve with scikit-learn"
            logger.info("skl2onnx cannot convert %s (%s): %s: %s", model_name, mode, type(exc).__name__,
                        _first_line(exc))
            continue
        arrays = {c["name"]: frame[c["name"]].to_numpy() for c in columns}
        parsed = ParsedInput(columns=columns, arrays=arrays, raw={}, n_rows=len(frame))
        try:
            session = session_create(onnx)
            outputs = session.run(None, feed_build(columns, parsed, mode, fills, input_names(session)))
        except Exception as exc:  # noqa: BLE001
            logger.info("ONNX Runtime cannot run the %s export (%s): %s: %s", model_name, mode,
                        type(exc).__name__, _first_line(exc))
            runtime_failed = True
            continue
        verdict = _compare(estimator, frame, outputs, classifier=classifier)
        verdict.update({"rows": int(len(frame)), "source": source, "tolerance": TOLERANCE,
                        "input_mode": mode})
        if verdict["passed"]:
            return Conversion(True, "", onnx, mode, verdict, fills,
                              probabilities=classifier and hasattr(estimator, "predict_proba"))
        failed = failed or Conversion(False, verdict["reason"], b"", mode, verdict)
    if failed is not None:
        return failed
    if runtime_failed:
        return Conversion(False, f"ONNX Runtime cannot run the converted {model_name} model, so "
                                 "scikit-learn serves it.")
    return Conversion(False, f"The ONNX converter cannot translate this {model_name} model, so "
                             "scikit-learn serves it.")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:300]


def _compare(estimator, frame: pd.DataFrame, outputs: list, *, classifier: bool) -> dict:
    if classifier:
        expected_labels = np.asarray(estimator.predict(frame))
        labels = np.asarray(outputs[0]).ravel()
        mismatched = int(np.sum(labels.astype(expected_labels.dtype) != expected_labels))
        verdict: dict = {"labels_identical": mismatched == 0, "label_mismatches": mismatched}
        if len(outputs) > 1 and hasattr(estimator, "predict_proba"):
            expected = np.asarray(estimator.predict_proba(frame), dtype=np.float64)
            got = np.asarray(outputs[1], dtype=np.float64)
            if got.shape != expected.shape:
                verdict.update(passed=False, reason=f"ONNX probabilities have shape {got.shape}, "
                                                    f"scikit-learn's {expected.shape}.")
                return verdict
            diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
            verdict["max_abs_diff"] = diff
        else:
            diff = 0.0
            verdict["max_abs_diff"] = None
        if mismatched:
            verdict.update(passed=False, reason=f"ONNX predicted a different label than scikit-learn on "
                                                f"{mismatched} of {len(frame)} held-out rows.")
        elif diff > TOLERANCE:
            verdict.update(passed=False, reason=f"ONNX class probabilities differ from scikit-learn's by up "
                                                f"to {diff:.3g} (allowed {TOLERANCE:g}).")
        else:
            verdict.update(passed=True, reason="")
        return verdict
    expected = np.asarray(estimator.predict(frame), dtype=np.float64).ravel()
    got = np.asarray(outputs[0], dtype=np.float64).ravel()
    if got.shape != expected.shape:
        return {"passed": False,
                "reason": f"ONNX output has shape {got.shape}, scikit-learn's {expected.shape}."}
    abs_diff = np.abs(got - expected)
    # Within 1e-5 absolutely, or relatively for outputs larger than 1.
    scaled = abs_diff / np.maximum(1.0, np.abs(expected))
    worst = float(np.max(scaled)) if scaled.size else 0.0
    verdict = {"max_abs_diff": float(np.max(abs_diff)) if abs_diff.size else 0.0, "max_scaled_diff": worst}
    if worst > TOLERANCE:
        verdict.update(passed=False, reason=f"ONNX regression outputs differ from scikit-learn's by up to "
                                            f"{verdict['max_abs_diff']:.3g} (allowed {TOLERANCE:g}, "
                                            f"relative above 1).")
    else:
        verdict.update(passed=True, reason="")
    return verdict
