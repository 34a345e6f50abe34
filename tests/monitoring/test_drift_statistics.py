"""The drift statistics against hand-computed values and SciPy."""

import math

import numpy as np
import pytest
from scipy import stats

from monitoring import drift
from monitoring.models import DEFAULT_THRESHOLDS


def thresholds(name):
    return DEFAULT_THRESHOLDS[name]


def test_psi_matches_the_formula_worked_by_hand():
    ref = [0.25, 0.25, 0.5]
    cur = [0.5, 0.25, 0.25]
    # (0.5-0.25)ln(2) + 0 + (0.25-0.5)ln(0.5) = 0.25 ln 2 + 0.25 ln 2
    assert drift.psi(ref, cur) == pytest.approx(0.5 * math.log(2))
    assert drift.psi(ref, ref) == 0.0


def test_psi_floors_an_empty_bin_at_epsilon_instead_of_going_infinite():
    value = drift.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    expected = 2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert value == pytest.approx(expected)


def test_quantile_bins_are_deciles_of_the_reference_with_open_outer_bins():
    ref = np.arange(1000, dtype=float)
    edges = drift.quantile_edges(ref)
    assert len(edges) == 9
    counts = drift.bin_counts(ref, edges)
    assert counts.tolist() == [100] * 10
    # Values far outside the reference land in the outer bins, not outside any bin.
    assert drift.bin_counts(np.array([-1e9, 1e9]), edges).tolist() == [1] + [0] * 8 + [1]


def test_edges_read_off_a_sorted_sample_are_numpys_quantiles_to_the_bit():
    rng = np.random.default_rng(3)
    samples = [np.arange(1000, dtype=float), np.full(50, 2.5), np.array([7.0]), np.array([1.0, 2.0])]
    for _ in range(200):
        scale = 10.0 ** rng.integers(-3, 7)
        samples.append(rng.normal(0, scale, rng.integers(1, 5000)).round(rng.integers(0, 4)))
    for sample in samples:
        ordered = np.sort(sample)
        assert np.array_equal(drift.sorted_quantile_edges(ordered), drift.quantile_edges(sample))


def test_missing_values_are_left_out_before_the_tests():
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(0, 1, 3000), rng.normal(0.3, 1, 2000)
    with_gaps_ref, with_gaps_cur = ref.copy(), cur.copy()
    with_gaps_ref[::7] = np.nan
    with_gaps_cur[::5] = np.nan
    kwargs = dict(significance=0.05, psi_floor=0.1, wasserstein_floor=0.1)
    gapped = drift.numeric_compare(with_gaps_ref, with_gaps_cur, **kwargs)
    present = drift.numeric_compare(ref[np.arange(3000) % 7 != 0], cur[np.arange(2000) % 5 != 0], **kwargs)
    assert gapped == present
    expected = stats.ks_2samp(ref[np.arange(3000) % 7 != 0], cur[np.arange(2000) % 5 != 0])
    assert gapped["statistic"] == pytest.approx(expected.statistic, rel=1e-5)


def test_ks_and_wasserstein_agree_with_scipy():
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(0.2, 1.1, 4000)
    out = drift.numeric_compare(ref, cur, significance=0.05, psi_floor=0.1, wasserstein_floor=0.1)
    expected = stats.ks_2samp(ref, cur)
    assert out["test"] == "ks"
    assert out["statistic"] == pytest.approx(expected.statistic, rel=1e-5)
    assert out["p_value"] == pytest.approx(expected.pvalue, rel=1e-5)
    assert out["wasserstein"] == pytest.approx(stats.wasserstein_distance(ref, cur) / np.std(ref), rel=1e-5)
    shares = np.array(out["histogram"]["current"])
    assert shares.sum() == pytest.approx(1.0) and len(shares) == 10


def test_chi_square_is_scipys_two_sample_test_and_unseen_categories_are_counted():
    ref = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    cur = np.array(["a"] * 300 + ["b"] * 300 + ["c"] * 300 + ["zz"] * 100, dtype=object)
    out = drift.categorical_compare(ref, cur, significance=0.05, psi_floor=0.1)
    table = np.array([[500, 300, 200, 0], [300, 300, 300, 100]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert out["statistic"] == pytest.approx(chi2, rel=1e-5)
    assert out["p_value"] == pytest.approx(p, rel=1e-5, abs=1e-300)
    assert out["unseen_share"] == pytest.approx(0.1)
    assert out["histogram"]["labels"] == ["a", "b", "c", "(unseen)"]
    assert out["drifted"] is True


def test_one_distribution_does_not_drift_even_with_many_rows():
    rng = np.random.default_rng(1)
    for seed in range(5):
        ref, cur = rng.normal(10, 3, 200_000), rng.normal(10, 3, 200_000)
        result = drift.feature_compare("x", ref, cur, thresholds=thresholds)["result"]
        assert result["drifted"] is False, (seed, result)


def test_a_tiny_but_significant_shift_is_not_drift_below_the_effect_floor():
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(0, 1, 1_000_000), rng.normal(0.02, 1, 1_000_000)
    result = drift.feature_compare("x", ref, cur, thresholds=thresholds)["result"]
    assert result["p_value"] < 0.05  # significant with a million rows...
    assert result["drifted"] is False  # ...but a shift of 2 % of a standard deviation is not drift


def test_data_quality_counts_missing_out_of_range_and_type_errors():
    ref = np.array([1.0, 2.0, 3.0, 4.0] * 50)
    cur = np.array([1.0, None, "oops", 9.0, 2.0] * 40, dtype=object)
    quality = drift.feature_compare("x", ref, cur, thresholds=thresholds)["quality"]
    assert quality == {
        "current_rows": 200,
        "missing": 40,
        "missing_rate": 0.2,
        "out_of_range": 40,
        "type_errors": 40,
    }


def test_page_hinkley_finds_a_rise_in_the_error_rate_and_not_a_steady_one():
    rng = np.random.default_rng(3)
    steady = (rng.random(4000) < 0.1).astype(float)
    assert drift.page_hinkley(steady, delta=0.005, threshold=50.0)["detected"] is False
    rising = np.concatenate([steady[:2000], (rng.random(2000) < 0.4).astype(float)])
    found = drift.page_hinkley(rising, delta=0.005, threshold=50.0)
    assert found["detected"] is True and 2000 <= found["index"] < 2400


def test_the_one_pass_ks_on_large_samples_is_scipys_asymptotic_test_ties_included():
    rng = np.random.default_rng(4)
    ref = rng.normal(0, 1, 60_000).round(2)  # rounded: many ties
    cur = rng.normal(0.05, 1, 40_000).round(2)
    d, p, w = drift.ks_test(np.sort(ref), np.sort(cur))
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert d == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


def test_text_columns_arrive_as_categoricals_and_compare_like_arrays():
    import pandas as pd

    ref = np.array(["a"] * 500 + ["b"] * 500, dtype=object)
    cur = np.array(["a"] * 300 + ["b"] * 600 + [None] * 100, dtype=object)
    as_arrays = drift.feature_compare("x", ref, cur, thresholds=thresholds)
    as_categoricals = drift.feature_compare(
        "x", pd.Categorical(ref), pd.Categorical(cur), thresholds=thresholds
    )
    assert as_arrays == as_categoricals
    assert as_arrays["quality"]["missing"] == 100
