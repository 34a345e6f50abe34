"""Fairness verdicts: a stored fairness report judged against a policy's thresholds.

One function, used by the fairness API (with a model's policy or the project defaults) and by
promotion requests, so a report passes or fails the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FairnessThresholds:
    # The four-fifths rule of the US EEOC Uniform Guidelines: a selection-rate ratio below 0.8 is
    # evidence of adverse impact. A convention, not a legal or statistical test of fairness.
    demographic_parity_ratio_min: float = 0.8
    equalized_odds_difference_max: float = 0.1
    # Groups smaller than this are flagged and left out of the judgement: their rates are noise.
    min_group_size: int = 30


def fairness_verdicts(*, summary: dict[str, dict[str, Any]], groups: list[dict[str, Any]],
                      thresholds: FairnessThresholds, task: str = "classification") -> list[dict[str, Any]]:
    """One verdict per (feature, metric): {"check", "feature", "metric", "value", "threshold",
    "passed", "message"}; plus one informational verdict per feature with small groups."""
    verdicts: list[dict[str, Any]] = []
    for feature, numbers in summary.items():
        small = [g["group"] for g in groups if g.get("feature") == feature and g.get("small")]
        if small:
            verdicts.append({
                "check": "fairness", "feature": feature, "metric": "small_groups", "value": len(small),
                "threshold": thresholds.min_group_size, "passed": True,
                "message": f"{len(small)} group(s) of '{feature}' have fewer than "
                           f"{thresholds.min_group_size} rows and are flagged, not judged: "
                           + ", ".join(str(g) for g in small[:10]),
            })
        if task != "classification":
            continue
        ratio = numbers.get("demographic_parity_ratio")
        if ratio is not None:
            passed = ratio >= thresholds.demographic_parity_ratio_min
            verdicts.append({
                "check": "fairness", "feature": feature, "metric": "demographic_parity_ratio",
                "value": ratio, "threshold": thresholds.demographic_parity_ratio_min, "passed": passed,
                "message": f"Demographic-parity ratio for '{feature}' is {ratio:.3f} "
                           f"({'≥' if passed else '<'} {thresholds.demographic_parity_ratio_min}, "
                           "the four-fifths rule).",
            })
        difference = numbers.get("equalized_odds_difference")
        if difference is not None:
            passed = difference <= thresholds.equalized_odds_difference_max
            verdicts.append({
                "check": "fairness", "feature": feature, "metric": "equalized_odds_difference",
                "value": difference, "threshold": thresholds.equalized_odds_difference_max,
                "passed": passed,
                "message": f"Equalized-odds difference for '{feature}' is {difference:.3f} "
                           f"({'≤' if passed else '>'} {thresholds.equalized_odds_difference_max}).",
            })
    return verdicts
