"""Metrics on the held-out split and the evaluation plots (Plotly JSON) logged with a trained run.
"""

from __future__ import annotations

import json
import math

import numpy as np

from training.catalog import MAX_PLOT_POINTS, NEEDS_SCORES, REGRESSION


def _scores(model, X):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X), True
    if hasattr(model, "decision_function"):
        return model.decision_function(X), False
    return None, False


def compute_metrics(task: str, names: list[str], model, X, y, log) -> dict[str, float]:
    from sklearn import metrics as skm

    out: dict[str, float] = {}
    pred = model.predict(X)
    if task == REGRESSION:
        mse = skm.mean_squared_error(y, pred)
        table = {"r2": lambda: skm.r2_score(y, pred), "mse": lambda: mse, "rmse": lambda: math.sqrt(mse),
                 "mae": lambda: skm.mean_absolute_error(y, pred),
                 "median_ae": lambda: skm.median_absolute_error(y, pred)}
        return {m: float(table[m]()) for m in names}
    classes = list(model.classes_)
    binary = len(classes) == 2
    avg = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "weighted"}
    scores, is_proba = (None, False)
    if NEEDS_SCORES & set(names):
        scores, is_proba = _scores(model, X)
    for m in names:
        if m == "accuracy":
            out[m] = skm.accuracy_score(y, pred)
        elif m == "balanced_accuracy":
            out[m] = skm.balanced_accuracy_score(y, pred)
        elif m in ("precision", "recall", "f1"):
            fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[m]
            out[m] = fn(y, pred, zero_division=0, **avg)
        elif m == "roc_auc":
            if len(set(y)) < 2:
                log(f"{m} skipped: this split holds one class only")
            elif binary:
                s = scores[:, 1] if is_proba else scores
                out[m] = skm.roc_auc_score(y, s)
            elif is_proba:
                out[m] = skm.roc_auc_score(y, scores, multi_class="ovr", average="weighted", labels=classes)
            else:
                log(f"{m} skipped: multiclass AUC needs probabilities")
        elif m == "log_loss":
            out[m] = skm.log_loss(y, scores, labels=classes)
    return {k: float(v) for k, v in out.items()}


def figure_json(data: list[dict], layout: dict) -> bytes:
    return json.dumps({"data": data, "layout": layout}).encode()


def classification_plots(model, X, y) -> dict[str, bytes]:
    from sklearn import metrics as skm

    classes = list(model.classes_)
    labels = [str(c) for c in classes]
    cm = skm.confusion_matrix(y, model.predict(X), labels=classes)
    plots = {"plots/confusion_matrix.json": figure_json(
        [{"type": "heatmap", "z": cm.tolist(), "x": labels, "y": labels, "colorscale": "Blues",
          "text": cm.tolist(), "texttemplate": "%{text}", "hovertemplate": "true %{y}<br>predicted %{x}"
          "<br>%{z} rows<extra></extra>"}],
        {"title": {"text": "Confusion matrix (test split)"}, "xaxis": {"title": {"text": "Predicted"}},
         "yaxis": {"title": {"text": "True"}, "autorange": "reversed"}},
    )}
    scores, is_proba = _scores(model, X)
    if scores is None or len(set(y)) < 2:
        return plots
    traces = []
    if len(classes) == 2:
        s = scores[:, 1] if is_proba else scores
        fpr, tpr, _ = skm.roc_curve(y, s, pos_label=classes[1])
        auc = skm.auc(fpr, tpr)
        traces.append({"type": "scatter", "mode": "lines", "x": fpr.tolist(), "y": tpr.tolist(),
                       "name": f"{labels[1]} (AUC {auc:.3f})"})
    elif is_proba:
        y_arr = np.asarray(y)
        for i, c in enumerate(classes[:10]):
            fpr, tpr, _ = skm.roc_curve(y_arr == c, scores[:, i])
            traces.append({"type": "scatter", "mode": "lines", "x": fpr.tolist(), "y": tpr.tolist(),
                           "name": f"{labels[i]} vs rest (AUC {skm.auc(fpr, tpr):.3f})"})
    if traces:
        traces.append({"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "chance",
                       "line": {"dash": "dash", "color": "#999"}})
        plots["plots/roc_curve.json"] = figure_json(traces, {
            "title": {"text": "ROC curve (test split)"},
            "xaxis": {"title": {"text": "False positive rate"}},
            "yaxis": {"title": {"text": "True positive rate"}}})
    return plots


def regression_plots(model, X, y, seed: int) -> dict[str, bytes]:
    pred = model.predict(X)
    y = np.asarray(y, dtype=float)
    idx = np.arange(len(y))
    if len(idx) > MAX_PLOT_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(idx, MAX_PLOT_POINTS, replace=False))
    return {"plots/residuals.json": figure_json(
        [{"type": "scattergl", "mode": "markers", "x": pred[idx].tolist(), "y": (y[idx] - pred[idx]).tolist(),
          "marker": {"size": 4, "opacity": 0.6}, "name": "residual"}],
        {"title": {"text": "Residuals (test split)"}, "xaxis": {"title": {"text": "Predicted"}},
         "yaxis": {"title": {"text": "Actual - predicted"}}},
    ), "plots/predicted_vs_actual.json": figure_json(
        [{"type": "scattergl", "mode": "markers", "x": y[idx].tolist(), "y": pred[idx].tolist(),
          "marker": {"size": 4, "opacity": 0.6}, "name": "test rows"},
         {"type": "scatter", "mode": "lines", "x": [float(y.min()), float(y.max())],
          "y": [float(y.min()), float(y.max())], "name": "ideal", "line": {"dash": "dash", "color": "#999"}}],
        {"title": {"text": "Predicted vs actual (test split)"}, "xaxis": {"title": {"text": "Actual"}},
         "yaxis": {"title": {"text": "Predicted"}}},
    )}
