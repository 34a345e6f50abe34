"""A training spec, checked in the web process against the dataset version's schema and the
estimator's own parameter constraints, so most mistakes are a 400 before anything is queued.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.exceptions import ValidationError

from accounts import selectors as account_selectors
from accounts.json_input import check_json_value
from accounts.models import Project
from accounts.permissions import can_see_pii
from datasets.models import DatasetVersion

# --- the spec ------------------------------------------------------------------------------
from training.catalog import (
    CLASS_KEYED_PARAMS,
    CLASSIFICATION,
    DEFAULT_METRICS,
    ESTIMATORS,
    FEATURE_KEYED_PARAMS,
    MAX_OBJECT_KEYS,
    MAX_PARAMS,
    METRICS,
    NEEDS_SCORES,
    NOT_FEATURE_ROLES,
    REGRESSION,
    SPEC_KEYS,
    SPLIT_KEYS,
    TASKS,
    USABLE_DTYPES,
    estimator_class,
)


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
