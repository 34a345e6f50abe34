"""Drift statistics, one feature (one column of each window) at a time, vectorised.

Nothing here touches the database: ``feature_compare`` takes a reference and a
current column as NumPy arrays and answers the tests, the effect sizes and the
histograms to draw. The caller reads one column of each window, compares them
and lets both go before it reads the next, so the two whole frames are never
in memory together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    pass

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


def sorted_quantile_edges(ref_sorted: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """``quantile_edges`` of an already sorted sample without NaN, read off by position instead of
    partitioning a million values again. The arithmetic is NumPy's own for its default "linear"
    method (virtual index (n - 1) q, and its two-sided lerp), so the edges are the same bits."""
    q = np.linspace(0, 1, bins + 1)[1:-1]
    n = len(ref_sorted)
    virtual = (n - 1) * q
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = following[above] = n - 1
    gamma = virtual - previous
    a, b = ref_sorted[previous.astype(np.intp)], ref_sorted[following.astype(np.intp)]
    diff = b - a
    out = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return np.unique(out)


def bin_counts(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts per bin: (-inf, e0), [e0, e1), ..., [e_last, +inf)."""
    index = np.searchsorted(inner_edges, values, side="right")
    return np.bincount(index, minlength=len(inner_edges) + 1)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(float)


def as_numbers(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Floats (NaN for missing) and how many present values were not numbers (type errors)."""
    import pandas as pd
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


def is_numeric(reference) -> bool:
    import pandas as pd
    return not isinstance(reference, pd.Categorical) and reference.dtype.kind in "iuf"


# Up to this many rows per side, SciPy's own ks_2samp (its exact p-value for small samples);
# above, the same asymptotic p-value SciPy uses there, from a statistic computed in one merge.
KS_SCIPY_MAX = 10_000


def sorted_cdf_distances(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float]:
    """KS D and the Wasserstein-1 distance of two sorted samples, in one pass over their merge.

    A stable argsort of the two concatenated sorted runs is a linear-time merge (timsort).
    The empirical CDFs are the running shares of each side; D is their largest gap at the
    end of each run of equal values, and Wasserstein-1 is the area between them.
    """
    n1, n2 = len(ref_sorted), len(cur_sorted)
    both = np.concatenate([ref_sorted, cur_sorted])
    order = np.argsort(both, kind="stable")
    values = both[order]
    del both
    # F_ref - F_cur after each merged value: with c1 of the first k values from the reference,
    # c1 / n1 - (k - c1) / n2. Worked in place: each whole-length temporary costs a pass over
    # memory, and two columns of a million rows are compared at a time.
    cdf_gap = np.cumsum(order < n1, dtype=np.int64)
    del order
    cdf_gap = cdf_gap * (1 / n1 + 1 / n2)
    cdf_gap -= np.arange(1, n1 + n2 + 1, dtype=np.float64) / n2
    np.abs(cdf_gap, out=cdf_gap)
    steps = np.diff(values)
    del values
    # Within a run of ties the CDFs are not yet complete: only the run's last position counts.
    d = float(max(np.max(cdf_gap[:-1], where=steps != 0, initial=0.0), cdf_gap[-1]))
    wasserstein = float(cdf_gap[:-1] @ steps)
    return d, wasserstein


def ks_test(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float, float]:
    """(D, p-value, Wasserstein-1) for two sorted samples."""
    from scipy import stats  # here, not at import: web processes load this module but never test

    n1, n2 = len(ref_sorted), len(cur_sorted)
    d, wasserstein = sorted_cdf_distances(ref_sorted, cur_sorted)
    if max(n1, n2) <= KS_SCIPY_MAX:
        result = stats.ks_2samp(ref_sorted, cur_sorted)
        return float(result.statistic), float(result.pvalue), wasserstein
    # As scipy.stats.ks_2samp(method="asymp") for a two-sided test.
    en = n1 * n2 / (n1 + n2)
    p_value = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))
    return d, p_value, wasserstein


def numeric_compare(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    significance: float,
    psi_floor: float,
    wasserstein_floor: float,
) -> dict[str, Any]:
    ref, cur = _sorted_present(reference), _sorted_present(current)
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
    statistic, p_value, distance = ks_test(ref, cur)
    edges = sorted_quantile_edges(ref)
    # Both sides are sorted: bin counts are differences of the edges' positions.
    ref_shares = _shares(
        np.diff(np.concatenate([[0], np.searchsorted(ref, edges, side="right"), [len(ref)]]))
    )
    cur_shares = _shares(
        np.diff(np.concatenate([[0], np.searchsorted(cur, edges, side="right"), [len(cur)]]))
    )
    value_psi = psi(ref_shares, cur_shares)
    std = float(np.std(ref))
    # A constant reference has no spread to measure against: any move is a full shift.
    wasserstein = distance / std if std > 0 else (0.0 if distance == 0 else float("inf"))
    effect = value_psi >= psi_floor or wasserstein >= wasserstein_floor
    lo, hi = float(ref[0]), float(ref[-1])
    # Outer edges for the picture only: the bins themselves stay open-ended.
    shown = [min(lo, float(cur[0])), *edges.tolist(), max(hi, float(cur[-1]))]
    return {
        "kind": "numerical",
        "test": "ks",
        "statistic": _round(statistic),
        "p_value": _round(p_value),
        "psi": _round(value_psi),
        "wasserstein": _round(wasserstein),
        "drifted": bool(p_value < significance and effect),
        "histogram": {
            "edges": shown,
            "reference": ref_shares.round(6).tolist(),
            "current": cur_shares.round(6).tolist(),
        },
        "range": [lo, hi],
        # Present current values outside the reference's range, counted on the sorted values.
        "out_of_range": int(np.searchsorted(cur, lo, side="left") + len(cur)
                            - np.searchsorted(cur, hi, side="right")),
    }


def _sorted_present(values: np.ndarray) -> np.ndarray:
    """The values without NaN, sorted: sorted first (NaN sorts last), then cut, which spares a
    masked copy of the whole column."""
    ordered = np.sort(values)
    return ordered[: np.searchsorted(ordered, np.nan, side="left")]


def label_counts(values) -> tuple[dict[str, int], int]:
    """Rows per category (as text) and the number of missing values, by hashing, not by row:
    a Categorical (what a dataset column arrives as) is counted from its codes."""
    import pandas as pd
    if isinstance(values, pd.Categorical):
        codes, uniques = values.codes, values.categories
    else:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    by_label: dict[str, int] = {}
    for value, count in zip(uniques, counts.tolist(), strict=True):
        if count:
            label = str(value)
            by_label[label] = by_label.get(label, 0) + count
    return by_label, int((codes < 0).sum())


def categorical_compare(reference, current, *, significance: float, psi_floor: float) -> dict[str, Any]:
    ref_counts, _ = label_counts(reference)
    cur_counts, _ = label_counts(current)
    if not ref_counts or not cur_counts:
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
    ranked = sorted(ref_counts, key=lambda label: (-ref_counts[label], label))
    kept = ranked[:MAX_CATEGORIES]
    pooled = len(ranked) > MAX_CATEGORIES
    k = len(kept)
    ref_bins = np.zeros(k + 2, dtype=np.int64)
    cur_bins = np.zeros(k + 2, dtype=np.int64)
    position = {label: i for i, label in enumerate(kept)}
    for label, count in ref_counts.items():
        ref_bins[position.get(label, k)] += count
    for label, count in cur_counts.items():
        # Kept categories, then "other" (in the reference, pooled), then "unseen".
        cur_bins[position.get(label, k if label in ref_counts else k + 1)] += count
    labels = [*kept, OTHER, UNSEEN]
    # A two-sample chi-square test of homogeneity on the 2 x bins table; bins empty on both
    # sides carry no information and would divide by zero.
    used = (ref_bins + cur_bins) > 0
    table = np.vstack([ref_bins[used], cur_bins[used]])
    if table.shape[1] < 2:
        statistic, p_value = 0.0, 1.0
    else:
        from scipy import stats

        statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    ref_shares, cur_shares = _shares(ref_bins), _shares(cur_bins)
    value_psi = psi(ref_shares, cur_shares)
    unseen_share = float(cur_bins[k + 1] / cur_bins.sum())
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
    }


def feature_compare(name: str, reference, current, *, thresholds) -> dict[str, Any]:
    """Tests, effect sizes, data quality and histograms of one feature, reference against current.

    ``reference`` and ``current`` are NumPy arrays, or pandas Categoricals for text columns.
    """
    import pandas as pd
    significance = thresholds("significance")
    ref = reference if isinstance(reference, pd.Categorical) else np.asarray(reference)
    cur = current if isinstance(current, pd.Categorical) else np.asarray(current)
    quality: dict[str, Any] = {"current_rows": int(len(cur))}
    if is_numeric(ref):
        ref_f = ref.astype(float, copy=False)
        cur_f, type_errors = as_numbers(np.asarray(cur))
        result = numeric_compare(
            ref_f,
            cur_f,
            significance=significance,
            psi_floor=thresholds("psi"),
            wasserstein_floor=thresholds("wasserstein"),
        )
        missing = int(np.isnan(cur_f).sum()) - type_errors
        if result.pop("range", None):
            quality["out_of_range"] = result.pop("out_of_range")
        quality["type_errors"] = type_errors
    else:
        result = categorical_compare(ref, cur, significance=significance, psi_floor=thresholds("psi"))
        missing = label_counts(cur)[1]
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
