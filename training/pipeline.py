"""The scikit-learn pipeline a spec trains (preprocessing + estimator), the train/test split
re-derived from the spec and seed, and the names of the pipeline's output columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError

from datasets import services as datasets
from datasets.models import DatasetVersion
from training.catalog import CLASSIFICATION, estimator_class
from training.spec import params_restore


def make_estimator(estimator: str, params: dict[str, Any], seed: int):
    est = estimator_class(estimator)()
    params = params_restore(estimator, params)
    if "random_state" in est.get_params(deep=False) and "random_state" not in params:
        params["random_state"] = seed  # the split seed makes the estimator repeatable too
    return est.set_params(**params)


def build_pipeline(*, estimator: str, params: dict[str, Any], seed: int, numeric: list[str],
                   categorical: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    est = make_estimator(estimator, params, seed)
    transformers = []
    if numeric:
        transformers.append(("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                                              ("scale", StandardScaler())]), numeric))
    if categorical:
        transformers.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical))
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    return Pipeline([("preprocess", pre), ("model", est)])

def _output_columns(preprocess) -> list[str]:
    """The input column behind each output of the fitted preprocessing, in output order."""
    out: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        # The imputer drops a column with no values at all; the encoder sees what it kept.
        kept = [str(c) for c in transformer.named_steps["impute"].get_feature_names_out(columns)]
        if name == "cat":
            categories = transformer.named_steps["onehot"].categories_
            for column, values in zip(kept, categories, strict=True):
                out.extend([column] * len(values))
        else:
            out.extend(kept)
    return out


def preprocess_output_columns(preprocess) -> list[str]:
    """The input column behind each output of a training pipeline's fitted preprocessing (a
    one-hot column's outputs all name it): explanations sum their SHAP values back to it."""
    return _output_columns(preprocess)


def feature_importances(pipeline, *,
                        by_column: set[str] | frozenset = frozenset()) -> list[dict[str, Any]] | None:
    """Importances by model input, most important first; a column in ``by_column`` (PII) is one entry.

    One-hot outputs are named after their category (``cat__email_ada@example.com``);
    a PII column's outputs are summed under the column's own name so no value is named.
    """
    model = pipeline.named_steps["model"]
    if hasattr(model, "feature_importances_"):
        values = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        coef = np.asarray(model.coef_, dtype=float)
        values = np.abs(coef) if coef.ndim == 1 else np.abs(coef).mean(axis=0)
    else:
        return None
    preprocess = pipeline.named_steps["preprocess"]
    names = [str(n) for n in preprocess.get_feature_names_out()]
    owners = _output_columns(preprocess)
    if len(owners) != len(names):
        raise RuntimeError("The preprocessing's outputs could not be matched to its input columns.")
    totals: dict[str, float] = {}
    for name, owner, value in zip(names, owners, values.tolist(), strict=True):
        key = owner if owner in by_column else name
        totals[key] = totals.get(key, 0.0) + float(value)
    pairs = sorted(totals.items(), key=lambda p: -p[1])
    return [{"feature": n, "importance": v} for n, v in pairs]


def _dtype_of(df, name: str, version: DatasetVersion) -> str:
    col = version.column(name)
    return col["dtype"] if col else str(df[name].dtype)


@dataclass
class TrainingSplit:
    """A training job's data, split as the job split it: the frames the pipeline saw."""

    X_train: Any
    X_test: Any
    y_train: Any
    y_test: Any
    y: Any  # every row's target (after rows with no target were dropped)
    numeric: list[str]
    categorical: list[str]
    dropped: int  # rows left out for having no target
    dtypes: dict[str, str]  # the features' and the target's dtypes
    # Columns asked for beside the features (sensitive features), for the test rows, same index.
    extra_test: Any = None


def training_split(*, spec: dict[str, Any], version: DatasetVersion, features: list[str],
                   extra_columns: list[str] | tuple[str, ...] = ()) -> TrainingSplit:
    """Read a training spec's data and split it by the spec's split and seed.

    The one definition of a training job's held-out split: the training job
    calls it, and the fairness audit and explanation re-derive the same test
    rows from a run's recorded spec and features. ``extra_columns`` are read
    beside the features and returned for the test rows; they change nothing
    about the split, which depends on the row count, the target and the seed.
    """
    from sklearn.model_selection import train_test_split

    target, task = spec["target"], spec["task"]
    extras = [c for c in extra_columns if c not in features and c != target]
    df = datasets.version_read_frame(version, columns=[*features, target, *extras])
    missing = int(df[target].isna().sum())
    if missing:
        df = df[df[target].notna()].reset_index(drop=True)
    y = df[target]
    if task == CLASSIFICATION:
        if _dtype_of(df, target, version) in ("string", "bool"):
            y = y.map(str)
        counts = y.value_counts()
        if len(counts) < 2:
            raise ValidationError({"target": f"{target!r} has a single class ({counts.index[0]!r}); "
                                             "classification needs at least two."})
        if spec["split"]["stratify"] and counts.min() < 2:
            raise ValidationError({"split.stratify": f"Class {counts.idxmin()!r} has one row; a stratified "
                                                     "split needs at least two of every class."})
    else:
        y = y.astype(float)
    if len(df) < 4:
        raise ValidationError({"dataset_version": "Too few rows with a target to split and train."})
    X = df[features].copy()
    numeric = [f for f in features if _dtype_of(df, f, version) in ("int64", "float64")]
    categorical = [f for f in features if f not in numeric]
    for name in categorical:
        X[name] = X[name].map(lambda v: v if v != v or v is None else str(v))

    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=spec["split"]["test_size"], random_state=spec["split"]["seed"],
            stratify=y if spec["split"]["stratify"] else None,
        )
    except ValueError as exc:
        raise ValidationError({"split": str(exc)}) from None
    extra_test = df.loc[X_test.index, [c for c in extra_columns if c != target]] if extra_columns else None
    dtypes = {name: _dtype_of(df, name, version) for name in [*features, target]}
    return TrainingSplit(X_train=X_train, X_test=X_test, y_train=y_train, y_test=y_test, y=y,
                         numeric=numeric, categorical=categorical, dropped=missing, dtypes=dtypes,
                         extra_test=extra_test)
