"""The estimators a training spec may name, the tasks and metrics, and the spec's limits.
"""

from __future__ import annotations

import importlib
from typing import Any

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# name -> (module, task). Only these are ever imported: a spec never names a module.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "LogisticRegression": ("sklearn.linear_model", CLASSIFICATION),
    "RidgeClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "SGDClassifier": ("sklearn.linear_model", CLASSIFICATION),
    "RandomForestClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "ExtraTreesClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "GradientBoostingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "HistGradientBoostingClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "AdaBoostClassifier": ("sklearn.ensemble", CLASSIFICATION),
    "SVC": ("sklearn.svm", CLASSIFICATION),
    "LinearSVC": ("sklearn.svm", CLASSIFICATION),
    "KNeighborsClassifier": ("sklearn.neighbors", CLASSIFICATION),
    "DecisionTreeClassifier": ("sklearn.tree", CLASSIFICATION),
    "GaussianNB": ("sklearn.naive_bayes", CLASSIFICATION),
    "LinearRegression": ("sklearn.linear_model", REGRESSION),
    "Ridge": ("sklearn.linear_model", REGRESSION),
    "Lasso": ("sklearn.linear_model", REGRESSION),
    "ElasticNet": ("sklearn.linear_model", REGRESSION),
    "SGDRegressor": ("sklearn.linear_model", REGRESSION),
    "RandomForestRegressor": ("sklearn.ensemble", REGRESSION),
    "ExtraTreesRegressor": ("sklearn.ensemble", REGRESSION),
    "GradientBoostingRegressor": ("sklearn.ensemble", REGRESSION),
    "HistGradientBoostingRegressor": ("sklearn.ensemble", REGRESSION),
    "AdaBoostRegressor": ("sklearn.ensemble", REGRESSION),
    "SVR": ("sklearn.svm", REGRESSION),
    "LinearSVR": ("sklearn.svm", REGRESSION),
    "KNeighborsRegressor": ("sklearn.neighbors", REGRESSION),
    "DecisionTreeRegressor": ("sklearn.tree", REGRESSION),
}

METRICS = {
    CLASSIFICATION: ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"],
    REGRESSION: ["r2", "mse", "rmse", "mae", "median_ae"],
}
DEFAULT_METRICS = {CLASSIFICATION: ["accuracy", "f1", "roc_auc"], REGRESSION: ["r2", "rmse", "mae"]}
NEEDS_SCORES = {"roc_auc", "log_loss"}
SPEC_KEYS = {"dataset_version", "target", "features", "sensitive_features", "task", "estimator",
             "params", "split", "metrics", "allow_pii_features"}
SPLIT_KEYS = {"test_size", "stratify", "seed"}
NOT_FEATURE_ROLES = {"id", "timestamp", "ignore"}
USABLE_DTYPES = {"int64", "float64", "bool", "string"}
MAX_PARAMS = 100
MAX_OBJECT_KEYS = 1000
# Hyperparameters whose JSON object is keyed by the target's class labels.
CLASS_KEYED_PARAMS = ("class_weight",)
# Hyperparameters whose object would name the estimator's input features.
FEATURE_KEYED_PARAMS = ("monotonic_cst",)
MAX_PLOT_POINTS = 5000
# What a run trained on PII columns writes that holds their values. The plots and JSON
# name columns and classes only (a PII column cannot be the target).
PII_FILES = {"model/model.skops"}


def estimator_class(name: str):
    module, _ = ESTIMATORS[name]
    return getattr(importlib.import_module(module), name)


def estimator_catalog() -> list[dict[str, Any]]:
    """The allow-list with each estimator's task and default parameters (for the form)."""
    out = []
    for name, (_, task) in ESTIMATORS.items():
        params = {k: v for k, v in estimator_class(name)().get_params(deep=False).items()
                  if v is None or isinstance(v, (bool, int, float, str))}
        out.append({"name": name, "task": task, "params": params})
    return out
