"""Bias audit and SHAP explanation: Steward's code against fairlearn and shap called directly.

Run by hand (not in CI):

    .venv/bin/python bench/governance.py                     # 100,000 rows x 30 features
    .venv/bin/python bench/governance.py --rows 20000 --repeats 1

A HistGradientBoostingClassifier in Steward's own training pipeline (imputation, scaling and
one-hot encoding) is fitted on ``--rows`` x 30 features (24 numeric, 6 categorical) with two
sensitive columns beside them. Both sides start from the fitted pipeline and the same rows, and
both include the model's predictions in their time.

1. Audit: Steward's ``governance.fairness.fairness_audit`` (a MetricFrame of counts, selection
   rate, accuracy, precision, recall, FPR and FNR per sensitive feature and their intersection,
   parity numbers, ``--bootstrap`` resamples for the intervals) against the floor: the same
   MetricFrames plus fairlearn's demographic_parity_* and equalized_odds_* functions called
   directly, per feature and for the intersection. Checked: every parity number equal (1e-9).
2. Explain: Steward's ``governance.explain.explain`` on ``--explain-rows`` rows (the job's
   default bound, EXPLANATION_MAX_ROWS) against shap.TreeExplainer called directly on the
   pipeline's transformed rows. Checked: Steward's per-column values equal shap's one-hot values
   summed per input column (1e-9), and base value + values equal the log-odds (1e-6).

Target: Steward within 1.5x of each floor. The web process never runs either: both are jobs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import report  # noqa: E402


def make_data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    numeric = [f"x{i:02d}" for i in range(24)]
    categorical = [f"c{i}" for i in range(6)]
    X = pd.DataFrame(rng.normal(size=(rows, len(numeric))), columns=numeric)
    for i, name in enumerate(categorical):
        X[name] = rng.choice(np.array([f"v{j}" for j in range(3 + i)], dtype=object), rows)
    X.loc[rng.choice(rows, rows // 100, replace=False), "x00"] = np.nan
    sensitive = pd.DataFrame({
        "sex": rng.choice(["F", "M"], rows),
        "race": rng.choice(["a", "b", "c", "d", "e"], rows, p=[0.5, 0.2, 0.15, 0.1, 0.05]),
    })
    score = (X["x01"] + 0.5 * X["x02"] - 0.3 * X["x03"] + (X["c0"] == "v1") * 0.8
             + (sensitive["race"] == "e") * 0.4 + rng.normal(0, 1, rows))
    y = (score > 0).astype(int)
    return X, y, sensitive, numeric, categorical


def floor_audit(pipeline, X, y, sensitive) -> dict[str, dict[str, float]]:
    """What a user calling fairlearn directly writes for the same table."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    metrics = {
        "count": count, "selection_rate": selection_rate, "accuracy": accuracy_score,
        "precision": lambda t, p: precision_score(t, p, zero_division=0),
        "recall": lambda t, p: recall_score(t, p, zero_division=0),
        "false_positive_rate": false_positive_rate, "false_negative_rate": false_negative_rate,
        "true_positive_rate": true_positive_rate,
    }
    y_pred = pipeline.predict(X)
    out = {}
    features = [(name, sensitive[name]) for name in sensitive.columns]
    features.append((" & ".join(sensitive.columns), sensitive))
    for name, sf in features:
        groups = MetricFrame(metrics=metrics, y_true=y, y_pred=y_pred, sensitive_features=sf).by_group
        out[name] = {
            "selection_rate": groups["selection_rate"].to_dict(),
            "demographic_parity_difference": demographic_parity_difference(y, y_pred, sensitive_features=sf),
            "demographic_parity_ratio": demographic_parity_ratio(y, y_pred, sensitive_features=sf),
            "equalized_odds_difference": equalized_odds_difference(y, y_pred, sensitive_features=sf),
            "equalized_odds_ratio": equalized_odds_ratio(y, y_pred, sensitive_features=sf),
        }
    return out


def steward_audit(pipeline, X, y, sensitive, bootstrap: int) -> dict:
    from governance.fairness import fairness_audit

    y_pred = pipeline.predict(X)
    result = fairness_audit(task="classification", y_true=np.asarray(y), y_pred=y_pred, sensitive=sensitive,
                            positive=1, bootstrap=bootstrap, seed=0)
    return result["summary"], result["groups"]


def floor_explain(pipeline, rows):
    import shap

    transformed = pipeline[:-1].transform(rows)
    result = shap.TreeExplainer(pipeline[-1], feature_perturbation="tree_path_dependent")(
        transformed, check_additivity=False)
    return result


def steward_explain(pipeline, rows, background):
    from governance.explain import explain

    return explain(estimator=pipeline, X=rows, background=background, classes=[0, 1])


def timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--explain-rows", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    import django

    django.setup()
    from training.services import build_pipeline, preprocess_output_columns

    report.print_load("before")
    X, y, sensitive, numeric, categorical = make_data(args.rows)
    print(f"Fitting HistGradientBoostingClassifier on {args.rows:,} rows x {X.shape[1]} features ...",
          flush=True)
    pipeline = build_pipeline(estimator="HistGradientBoostingClassifier", params={}, seed=0,
                              numeric=numeric, categorical=categorical).fit(X, y)

    ours_audit, floor_audit_s, ours_explain, floor_explain_s = [], [], [], []
    rows = X.sample(min(args.explain_rows, len(X)), random_state=0)
    background = X.sample(100, random_state=1)
    # Warm-up (imports, compiled code on first use) outside the timings, for both sides.
    floor_explain(pipeline, rows.head(10))
    steward_explain(pipeline, rows.head(10), background)
    steward_audit(pipeline, X.head(1000), y.head(1000), sensitive.head(1000), 2)
    floor_audit(pipeline, X.head(1000), y.head(1000), sensitive.head(1000))
    for _ in range(args.repeats):
        seconds, expected = timed(floor_audit, pipeline, X, y, sensitive)
        floor_audit_s.append(seconds)
        seconds, (summary, groups) = timed(steward_audit, pipeline, X, y, sensitive, args.bootstrap)
        ours_audit.append(seconds)
        for feature, numbers in expected.items():
            rates = numbers.pop("selection_rate")
            ours = {g["group"]: g["selection_rate"] for g in groups if g["feature"] == feature}
            keys = {(" & ".join(k) if isinstance(k, tuple) else k): v for k, v in rates.items()}
            if keys.keys() != ours.keys() or any(abs(ours[k] - v) > 1e-9 for k, v in keys.items()):
                raise SystemExit(f"Group selection rates differ from fairlearn's for {feature}")
            for key, value in numbers.items():
                if abs(summary[feature][key] - value) > 1e-9:
                    raise SystemExit(f"Audit differs from fairlearn: {feature} {key} "
                                     f"{summary[feature][key]} != {value}")

        seconds, direct = timed(floor_explain, pipeline, rows)
        floor_explain_s.append(seconds)
        seconds, explained = timed(steward_explain, pipeline, rows, background)
        ours_explain.append(seconds)
        owners = preprocess_output_columns(pipeline[0])
        summed = pd.DataFrame(np.asarray(direct.values), columns=owners).T.groupby(level=0).sum().T
        if explained.explainer != "tree" or not np.allclose(
                summed[explained.columns].to_numpy(), explained.values, atol=1e-9, rtol=0):
            raise SystemExit("Explanation differs from shap's own values summed per input column.")
        if not explained.additivity_ok:
            raise SystemExit(f"Additivity fails: {explained.additivity_max_error}")

    table = report.Table(f"Governance analyses: HistGradientBoosting, {args.rows:,} rows x 30 features",
                         columns=("Steward", "fairlearn / shap"))
    table.add(f"bias audit, 2 sensitive + intersection ({args.bootstrap} bootstrap)", "s",
              {"Steward": ours_audit, "fairlearn / shap": floor_audit_s}, higher_is_better=False,
              checked="group rates, parity numbers equal (1e-9)")
    table.add(f"SHAP explanation of {len(rows):,} rows", "s",
              {"Steward": ours_explain, "fairlearn / shap": floor_explain_s}, higher_is_better=False,
              checked="values = shap's summed per column; additivity holds")
    table.print()
    report.print_load("after")


if __name__ == "__main__":
    main()
