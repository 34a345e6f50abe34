"""The bias audit's numbers: fairlearn's MetricFrame for each sensitive feature and their intersection.

Pure computation on arrays (no database), so the job, the tests and the benchmark run the same
code. Per group: counts, selection rate, accuracy, precision, recall, false-positive and
false-negative rates (regression: error and mean prediction). Per feature: demographic parity and
equalized odds as a difference and a ratio, exactly as fairlearn defines them, with bootstrap
confidence intervals that are informational only (seeded, bounded in resamples).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    import pandas as pd

CLASSIFICATION = "classification"
REGRESSION = "regression"
MISSING = "(missing)"
OTHER = "(other)"
# More groups than this in one column are grouped: numbers into quantile bins, text into the
# most frequent values and "(other)". A table of thousands of one-row groups judges nothing.
MAX_GROUPS = 50
NUMERIC_BINS = 5
INTERSECTION_JOIN = " & "


def _clean(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def group_labels(values: pd.Series) -> pd.Series:
    """A sensitive column as text group labels: missing values are one group, and a column with
    very many distinct values is binned (numbers) or cut to its most frequent values (text)."""
    import pandas as pd
    values = pd.Series(values).reset_index(drop=True)
    distinct = values.nunique(dropna=True)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if distinct > MAX_GROUPS and numeric:
        bins = pd.qcut(values.astype(float), q=NUMERIC_BINS, duplicates="drop")
        labels = bins.astype(str)
        return labels.where(values.notna(), MISSING)
    labels = values.map(lambda v: MISSING if v is None or (isinstance(v, float) and v != v) else str(v))
    labels = labels.where(values.notna(), MISSING)
    if labels.nunique() > MAX_GROUPS:
        keep = set(labels.value_counts().index[: MAX_GROUPS - 1])
        labels = labels.where(labels.isin(keep), OTHER)
    return labels


def _features_frame(sensitive: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd
    return pd.DataFrame({name: group_labels(sensitive[name]) for name in sensitive.columns})


def _classification_counts(y_true, y_pred) -> np.ndarray:
    """[rows, true positives, false positives, false negatives, true negatives] of 0/1 labels."""
    truth = np.asarray(y_true) == 1
    chosen = np.asarray(y_pred) == 1
    tp = np.count_nonzero(truth & chosen)
    fp = np.count_nonzero(~truth & chosen)
    fn = np.count_nonzero(truth & ~chosen)
    return np.array([len(truth), tp, fp, fn, len(truth) - tp - fp - fn], dtype=np.int64)


def _regression_sums(y_true, y_pred) -> np.ndarray:
    """[rows, sum of predictions, sum of targets, sum of |errors|, sum of squared errors]."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    errors = y_true - y_pred
    return np.array([len(y_true), y_pred.sum(), y_true.sum(), np.abs(errors).sum(), (errors ** 2).sum()])


def _share(part, whole):
    # A rate with nothing to divide is 0, as scikit-learn's zero_division=0 and fairlearn's
    # normalised confusion matrix both give.
    part = np.asarray(part, dtype=float)
    whole = np.asarray(whole, dtype=float)
    return np.divide(part, whole, out=np.zeros_like(part), where=whole != 0)


def _group_table(by_group: pd.Series, task: str) -> pd.DataFrame:
    """Per-group metrics from each group's counts, with the definitions of scikit-learn's and
    fairlearn's functions (the tests compare them): selection rate, accuracy, precision, recall,
    false-positive and false-negative rates; regression: mean prediction and target, MAE, RMSE."""
    import pandas as pd
    counts = np.stack(by_group.to_numpy())
    n = counts[:, 0]
    if task == CLASSIFICATION:
        tp, fp, fn, tn = counts[:, 1], counts[:, 2], counts[:, 3], counts[:, 4]
        columns = {
            "count": n.astype(np.int64),
            "selection_rate": _share(tp + fp, n),
            "accuracy": _share(tp + tn, n),
            "precision": _share(tp, tp + fp),
            "recall": _share(tp, tp + fn),
            "false_positive_rate": _share(fp, fp + tn),
            "false_negative_rate": _share(fn, tp + fn),
            # Equalized odds compares this and the false-positive rate (fairlearn's definition).
            "true_positive_rate": _share(tp, tp + fn),
        }
    else:
        columns = {
            "count": n.astype(np.int64),
            "mean_prediction": _share(counts[:, 1], n),
            "mean_target": _share(counts[:, 2], n),
            "mean_absolute_error": _share(counts[:, 3], n),
            "root_mean_squared_error": np.sqrt(_share(counts[:, 4], n)),
        }
    return pd.DataFrame(columns, index=by_group.index)


def _between(by_group: pd.Series) -> tuple[float, float]:
    """(difference, ratio) between groups as fairlearn's MetricFrame computes them."""
    values = by_group.astype(float)
    high, low = float(values.max()), float(values.min())
    difference = high - low
    ratio = low / high if high != 0 else (1.0 if low == 0 else float("nan"))
    return difference, ratio


def _summary_classification(table: pd.DataFrame) -> dict[str, float]:
    dp_difference, dp_ratio = _between(table["selection_rate"])
    tpr_difference, tpr_ratio = _between(table["true_positive_rate"])
    fpr_difference, fpr_ratio = _between(table["false_positive_rate"])
    # fairlearn's equalized odds ("worst_case"): the larger difference, the smaller ratio.
    return {
        "demographic_parity_difference": dp_difference,
        "demographic_parity_ratio": dp_ratio,
        "equalized_odds_difference": max(tpr_difference, fpr_difference),
        "equalized_odds_ratio": min(tpr_ratio, fpr_ratio),
    }


def _summary_regression(table: pd.DataFrame) -> dict[str, float]:
    mean_difference, mean_ratio = _between(table["mean_prediction"])
    error_difference, error_ratio = _between(table["mean_absolute_error"])
    return {
        "mean_prediction_difference": mean_difference,
        "mean_prediction_ratio": mean_ratio,
        "mean_absolute_error_difference": error_difference,
        "mean_absolute_error_ratio": error_ratio,
    }


def _percentile_interval(samples: np.ndarray) -> list[float | None]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return [None, None]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def _resample_classification(codes: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray,
                             w: np.ndarray) -> dict[str, float]:
    """The parity numbers of one bootstrap resample; ``w`` says how often each row was drawn.

    Group sums are weighted bincounts, so a resample costs a few passes over the rows instead of
    a MetricFrame.
    """
    positives = y_true == 1
    selected = y_pred == 1
    rows = np.bincount(codes, weights=w, minlength=n_groups)
    present = rows > 0
    sel = np.bincount(codes, weights=w * selected, minlength=n_groups)[present] / rows[present]
    pos = np.bincount(codes, weights=w * positives, minlength=n_groups)[present]
    neg = rows[present] - pos
    tp = np.bincount(codes, weights=w * (positives & selected), minlength=n_groups)[present]
    fp = np.bincount(codes, weights=w * (~positives & selected), minlength=n_groups)[present]
    tpr = np.divide(tp, pos, out=np.zeros_like(tp), where=pos > 0)
    fpr = np.divide(fp, neg, out=np.zeros_like(fp), where=neg > 0)

    def ratio(values: np.ndarray) -> float:
        return float(values.min() / values.max()) if values.max() > 0 else 1.0

    return {
        "demographic_parity_difference": float(sel.max() - sel.min()),
        "demographic_parity_ratio": ratio(sel),
        "equalized_odds_difference": float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min())),
        "equalized_odds_ratio": min(ratio(tpr), ratio(fpr)),
    }


def _resample_regression(codes: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray,
                         w: np.ndarray) -> dict[str, float]:
    rows = np.bincount(codes, weights=w, minlength=n_groups)
    present = rows > 0
    mean = np.bincount(codes, weights=w * y_pred, minlength=n_groups)[present] / rows[present]
    mae = np.bincount(codes, weights=w * np.abs(y_true - y_pred), minlength=n_groups)[present] / rows[present]
    return {"mean_prediction_difference": float(mean.max() - mean.min()),
            "mean_absolute_error_difference": float(mae.max() - mae.min())}


def _bootstrap(task: str, codes: list[tuple[np.ndarray, int]], y_true: np.ndarray, y_pred: np.ndarray,
               resamples: int, seed: int) -> list[dict[str, list[float | None]]]:
    """95% percentile intervals per feature. The same resamples serve every feature (drawn once
    each, with the row weights never all held in memory at once)."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    one = _resample_classification if task == CLASSIFICATION else _resample_regression
    samples: list[dict[str, list[float]]] = [{} for _ in codes]
    for _ in range(resamples):
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        for i, (feature_codes, n_groups) in enumerate(codes):
            for key, value in one(feature_codes, n_groups, y_true, y_pred, w).items():
                samples[i].setdefault(key, []).append(value)
    return [{k: _percentile_interval(np.asarray(v, dtype=float)) for k, v in s.items()} for s in samples]


def _codes(labels: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, int]:
    """Each row's group among the combinations of ``columns`` as 0..k-1 (for the bootstrap)."""
    import pandas as pd
    combined = np.zeros(len(labels), dtype=np.int64)
    for column in columns:
        codes, uniques = pd.factorize(labels[column])
        combined = combined * max(len(uniques), 1) + codes
    codes, uniques = pd.factorize(combined)
    return codes, len(uniques)


def fairness_audit(*, task: str, y_true, y_pred, sensitive: pd.DataFrame, positive: Any = None,
                   min_group_size: int = 30, bootstrap: int = 100, seed: int = 0,
                   progress=None) -> dict[str, Any]:
    """Group tables and parity numbers for each sensitive column and, with two or more, their
    intersection (one feature named "a & b"); with one column there is no separate intersection.

    Classification is judged for ``positive`` (the selected outcome): labels are compared to it,
    so multi-class models are audited one-vs-rest. Returns {"groups": [...], "summary": {...}}.
    """
    from fairlearn.metrics import MetricFrame

    if task not in (CLASSIFICATION, REGRESSION):
        raise ValueError(f"Unknown task {task!r}")
    if sensitive.shape[1] == 0:
        raise ValueError("No sensitive features to audit.")
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if task == CLASSIFICATION:
        y_true = (y_true == positive).astype(int)
        y_pred = (y_pred == positive).astype(int)
    else:
        y_true = y_true.astype(float)
        y_pred = y_pred.astype(float)
    labels = _features_frame(sensitive.reset_index(drop=True))
    features: list[tuple[str, list[str]]] = [(name, [name]) for name in labels.columns]
    if labels.shape[1] > 1:
        features.append((INTERSECTION_JOIN.join(labels.columns), list(labels.columns)))

    # One metric per MetricFrame: each group's counts (or sums), from which every rate follows.
    # A MetricFrame call converts its group's rows in Python, so one call beats eight.
    counts = _classification_counts if task == CLASSIFICATION else _regression_sums
    groups: list[dict[str, Any]] = []
    summary: dict[str, dict[str, Any]] = {}
    codes: list[tuple[np.ndarray, int]] = []
    for index, (feature, columns) in enumerate(features):
        chosen = labels[columns[0]] if len(columns) == 1 else labels[columns]
        frame = MetricFrame(metrics={"counts": counts}, y_true=y_true, y_pred=y_pred,
                            sensitive_features=chosen)
        table = _group_table(frame.by_group["counts"], task)
        for key, row in table.iterrows():
            values = list(key) if isinstance(key, tuple) else [key]
            entry = {"feature": feature, "group": INTERSECTION_JOIN.join(map(str, values)),
                     "values": [str(v) for v in values]}
            entry.update({name: _clean(row[name]) for name in table.columns if name != "true_positive_rate"})
            entry["count"] = int(row["count"])
            entry["small"] = entry["count"] < min_group_size
            groups.append(entry)
        numbers = (_summary_classification if task == CLASSIFICATION else _summary_regression)(table)
        numbers = {k: _clean(v) for k, v in numbers.items()}
        numbers["groups"] = int(len(table))
        numbers["small_groups"] = int((table["count"] < min_group_size).sum())
        numbers["columns"] = columns
        summary[feature] = numbers
        codes.append(_codes(labels, columns))
        if progress is not None:
            progress(index + 1, len(features) + 1)
    if bootstrap and len(y_true):
        intervals = _bootstrap(task, codes, y_true, y_pred, bootstrap, seed)
        for (feature, _), ci in zip(features, intervals, strict=True):
            summary[feature].update({"ci": ci, "ci_level": 0.95, "bootstrap_samples": int(bootstrap)})
    return {"groups": groups, "summary": summary}


def positive_label(classes: list[Any]) -> Any:
    """The outcome counted as "selected": the last of the model's sorted classes (1 of 0/1,
    True of False, "yes" of "no"). An installation with other conventions names it on re-run."""
    return classes[-1] if classes else 1


def groups_masked(groups: list[dict[str, Any]], summary: dict[str, dict[str, Any]],
                  pii_columns: set[str]) -> list[dict[str, Any]]:
    """Group rows with the values of PII columns replaced by stable placeholders ("group 1", ...)
    for readers who may not see PII; intersections mask only their PII parts."""
    if not pii_columns:
        return groups
    names: dict[str, dict[str, str]] = {}
    for feature, numbers in summary.items():
        columns = numbers.get("columns") or [feature]
        if len(columns) == 1 and columns[0] in pii_columns:
            values = sorted({g["values"][0] for g in groups if g["feature"] == feature})
            names[columns[0]] = {v: f"group {i + 1}" for i, v in enumerate(values)}
    out = []
    for group in groups:
        columns = (summary.get(group["feature"]) or {}).get("columns") or [group["feature"]]
        values = list(group.get("values") or [group["group"]])
        if not any(c in pii_columns for c in columns):
            out.append(group)
            continue
        shown = [names.get(c, {}).get(v, "masked") if c in pii_columns else v
                 for c, v in zip(columns, values, strict=False)]
        out.append({**group, "group": INTERSECTION_JOIN.join(shown), "values": shown, "masked": True})
    return out
