"""Drift statistics, one feature (one column of each window) at a time, vectorised.

Nothing here touches the database: ``feature_compare`` takes a reference and a
current column as NumPy arrays and answers the tests, the effect sizes and the
histograms to draw. The caller reads one column of each window, compares them
and lets both go before it reads the next, so the two whole frames are never
in memory together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

PSI_BINS = 10
# PSI takes log(current/reference) per bin; an empty bin would make it infinite. Shares are
# floored at this value (0.01 % of the rows) before the log: a bin empty on one side then adds
# a large but finite amount, and the floor is too small to move PSI where both sides have rows.
PSI_EPSILON = 1e-4
# Categories beyond the reference's most frequent ones are pooled into one bin.
MAX_CATEGORIES = 50
UNSEEN = "(unseen)"
OTHER = "(other)"
# Reported p-values and statistics are rounded to this many significant digits.
DIGITS = 6


def _round(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(f"{value:.{DIGITS}g}")


def psi(reference_shares: np.ndarray, current_shares: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum over bins of (c - r) * ln(c / r), shares floored at epsilon."""
    r = np.maximum(np.asarray(reference_shares, dtype=float), epsilon)
    c = np.maximum(np.asarray(current_shares, dtype=float), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def quantile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The inner edges of ``bins`` quantile bins of the reference; the outer bins are open-ended
    (everything below the first edge, everything above the last). Repeated quantiles (a column
    with few distinct values) collapse into one edge."""
    qs = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e0), [e0, e1), ..., [e_last, +inf)."""
    index = np.searchsorted(inner_edges, values, side="right")
    return np.bincount(index, minlength=len(inner_edges) + 1)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def as_numbers(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Floats (NaN for missing) and how many present values were not numbers (type errors)."""
    if values.dtype.kind in "biuf":
        return values.astype(float, copy=False), 0
    series = pd.Series(values, dtype=object)
    numbers = pd.to_numeric(series, errors="coerce")
    # Booleans are not numbers here, even though Python counts them as ints.
    bools = series.map(type).eq(bool).to_numpy()
    out = numbers.to_numpy(dtype=float, copy=True)
    out[bools] = np.nan
    type_errors = int((np.isnan(out) & series.notna().to_numpy()).sum())
    return out, type_errors


def is_numeric(reference: np.ndarray) -> bool:
    return reference.dtype.kind in "iuf"


def numeric_compare(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    significance: float,
    psi_floor: float,
    wasserstein_floor: float,
) -> dict[str, Any]:
    ref = reference[~np.isnan(reference)]
    cur = current[~np.isnan(current)]
    if len(ref) == 0 or len(cur) == 0:
        return {
            "kind": "numerical",
            "test": "ks",
            "statistic": None,
            "p_value": None,
            "psi": None,
            "wasserstein": None,
            "drifted": False,
            "histogram": None,
        }
    ks = stats.ks_2samp(ref, cur)
    edges = quantile_edges(ref)
    ref_shares = _shares(bin_counts(ref, edges))
    cur_shares = _shares(bin_counts(cur, edges))
    value_psi = psi(ref_shares, cur_shares)
    std = float(np.std(ref))
    distance = float(stats.wasserstein_distance(ref, cur))
    # A constant reference has no spread to measure against: any move is a full shift.
    wasserstein = distance / std if std > 0 else (0.0 if distance == 0 else float("inf"))
    effect = value_psi >= psi_floor or wasserstein >= wasserstein_floor
    lo, hi = float(ref.min()), float(ref.max())
    # Outer edges for the picture only: the bins themselves stay open-ended.
    shown = [min(lo, float(cur.min())), *edges.tolist(), max(hi, float(cur.max()))]
    return {
        "kind": "numerical",
        "test": "ks",
        "statistic": _round(ks.statistic),
        "p_value": _round(ks.pvalue),
        "psi": _round(value_psi),
        "wasserstein": _round(wasserstein),
        "drifted": bool(ks.pvalue < significance and effect),
        "histogram": {
            "edges": shown,
            "reference": ref_shares.round(6).tolist(),
            "current": cur_shares.round(6).tolist(),
        },
        "range": [lo, hi],
    }


def _labels(values: np.ndarray) -> pd.Series:
    series = pd.Series(values, dtype=object)
    return series.where(series.isna(), series.astype(str))


def categorical_compare(
    reference: np.ndarray, current: np.ndarray, *, significance: float, psi_floor: float
) -> dict[str, Any]:
    ref = _labels(reference).dropna()
    cur = _labels(current).dropna()
    if len(ref) == 0 or len(cur) == 0:
        return {
            "kind": "categorical",
            "test": "chi2",
            "statistic": None,
            "p_value": None,
            "psi": None,
            "wasserstein": None,
            "unseen_share": None,
            "drifted": False,
            "histogram": None,
        }
    ref_counts = ref.value_counts()
    kept = ref_counts.index[:MAX_CATEGORIES]
    categories = pd.Index(kept)
    pooled = len(ref_counts) > MAX_CATEGORIES
    # Hash lookups into the kept categories, -1 for any other value.
    ref_codes = categories.get_indexer(ref)
    cur_codes = categories.get_indexer(cur)
    seen_anywhere = set(ref_counts.index)
    # -1: not among the kept categories; split into "other" (in the reference) and "unseen".
    cur_unseen_mask = (cur_codes == -1) & ~cur.isin(seen_anywhere).to_numpy()
    k = len(categories)
    ref_bins = np.bincount(np.where(ref_codes == -1, k, ref_codes), minlength=k + 2)
    cur_bins = np.bincount(
        np.where(cur_unseen_mask, k + 1, np.where(cur_codes == -1, k, cur_codes)), minlength=k + 2
    )
    labels = [*categories.tolist(), OTHER, UNSEEN]
    # A two-sample chi-square test of homogeneity on the 2 x bins table; bins empty on both
    # sides carry no information and would divide by zero.
    used = (ref_bins + cur_bins) > 0
    table = np.vstack([ref_bins[used], cur_bins[used]])
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    ref_shares, cur_shares = _shares(ref_bins), _shares(cur_bins)
    value_psi = psi(ref_shares, cur_shares)
    unseen_share = float(cur_bins[k + 1] / len(cur))
    shown = [i for i in range(k + 2) if used[i] and (i < k or (i == k and pooled) or i == k + 1)]
    return {
        "kind": "categorical",
        "test": "chi2",
        "statistic": _round(statistic),
        "p_value": _round(p_value),
        "psi": _round(value_psi),
        "wasserstein": None,
        "unseen_share": _round(unseen_share),
        "drifted": bool(p_value < significance and value_psi >= psi_floor),
        "histogram": {
            "labels": [labels[i] for i in shown],
            "reference": ref_shares[shown].round(6).tolist(),
            "current": cur_shares[shown].round(6).tolist(),
        },
        "categories": categories.tolist(),
    }


def feature_compare(name: str, reference: np.ndarray, current: np.ndarray, *, thresholds) -> dict[str, Any]:
    """Tests, effect sizes, data quality and histograms of one feature, reference against current."""
    significance = thresholds("significance")
    ref = np.asarray(reference)
    cur = np.asarray(current)
    quality: dict[str, Any] = {"current_rows": int(len(cur))}
    numeric = is_numeric(ref) and ref.dtype.kind != "b"
    if numeric:
        ref_f = ref.astype(float, copy=False)
        cur_f, type_errors = as_numbers(cur)
        result = numeric_compare(
            ref_f,
            cur_f,
            significance=significance,
            psi_floor=thresholds("psi"),
            wasserstein_floor=thresholds("wasserstein"),
        )
        missing = int(np.isnan(cur_f).sum()) - type_errors
        if result.get("range"):
            lo, hi = result.pop("range")
            present = cur_f[~np.isnan(cur_f)]
            quality["out_of_range"] = int(((present < lo) | (present > hi)).sum())
        quality["type_errors"] = type_errors
    else:
        cur_s = _labels(cur)
        result = categorical_compare(ref, cur, significance=significance, psi_floor=thresholds("psi"))
        result.pop("categories", None)
        missing = int(cur_s.isna().sum())
        quality["type_errors"] = 0
    quality["missing"] = missing
    quality["missing_rate"] = _round(missing / len(cur)) if len(cur) else None
    result["feature"] = name
    result.setdefault("unseen_share", None)
    return {"result": result, "quality": quality}


def page_hinkley(errors: np.ndarray, *, delta: float, threshold: float) -> dict[str, Any]:
    """Page-Hinkley test for an increase in the mean of an error stream (Page 1954; Hinkley 1971).

    m_t = sum_{i<=t} (x_i - mean_i - delta), with mean_i the running mean up to i; the
    statistic is m_t - min_{s<=t} m_s, and a change is detected the first time it exceeds
    ``threshold`` (lambda). Vectorised with cumulative sums instead of a loop over the stream.
    """
    x = np.asarray(errors, dtype=float)
    if len(x) == 0:
        return {"detected": False, "index": None, "statistic": 0.0, "n": 0}
    running_mean = np.cumsum(x) / np.arange(1, len(x) + 1)
    m = np.cumsum(x - running_mean - delta)
    ph = m - np.minimum.accumulate(np.minimum(m, 0.0))
    over = np.flatnonzero(ph > threshold)
    return {
        "detected": bool(len(over)),
        "index": int(over[0]) if len(over) else None,
        "statistic": _round(float(ph.max())),
        "n": int(len(x)),
        "delta": delta,
        "lambda": threshold,
    }
