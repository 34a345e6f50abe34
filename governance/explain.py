"""SHAP explanations of a whole fitted pipeline, in terms of its input columns.

The explainer follows the model: Tree for tree ensembles, Linear for linear models, Permutation
for anything else. Tree and Linear run on the final estimator over the preprocessing's output,
and the values of every output a column became (its one-hot categories) are summed back to that
column — exact, since SHAP values add. Permutation runs on the whole pipeline over the input
columns. The explained output is named: "log_odds" (a classifier's decision function),
"probability" (of the explained class) or "value" (a regressor's prediction, or a margin), and each
row's prediction is that output, so ``base_value + sum(shap_values) == prediction`` (checked).

Pure computation (no database): the job, the per-prediction API, tests and benchmark share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    import pandas as pd

TREE = "tree"
LINEAR = "linear"
PERMUTATION = "permutation"
LOG_ODDS = "log_odds"
PROBABILITY = "probability"
VALUE = "value"

TREE_MODELS = {
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor", "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor", "DecisionTreeClassifier", "DecisionTreeRegressor",
}
# Trees whose raw output is a probability (leaf class frequencies); the boosted ones add log-odds.
PROBABILITY_TREES = {"RandomForestClassifier", "ExtraTreesClassifier", "DecisionTreeClassifier"}
LINEAR_MODELS = {
    "LogisticRegression", "LinearRegression", "Ridge", "Lasso", "ElasticNet", "SGDClassifier",
    "SGDRegressor", "RidgeClassifier", "LinearSVC", "LinearSVR",
}
# Preprocessing steps that map each input column to exactly one output column, in order.
ELEMENTWISE_STEPS = {"StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer"}
# |base + sum(shap) - prediction| allowed, relative to the output's scale (floating-point sums).
ADDITIVITY_TOLERANCE = 1e-6


@dataclass
class Explained:
    explainer: str
    output: str
    explained_class: Any
    columns: list[str]
    base_value: float
    values: np.ndarray  # (rows, columns): SHAP values by input column
    predictions: np.ndarray  # (rows,): the named output
    additivity_max_error: float
    additivity_ok: bool
    notes: list[str] = field(default_factory=list)


def _final_and_preprocess(estimator):
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        if len(estimator.steps) == 1:
            return estimator.steps[-1][1], None
        return estimator.steps[-1][1], estimator[:-1]
    return estimator, None


def _input_owners(preprocess, columns: list[str]) -> list[str] | None:
    """The input column behind each output of the preprocessing, or None when it cannot be told
    (then the whole pipeline is explained by permutation instead)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    if preprocess is None:
        return list(columns)
    steps = [s for _, s in preprocess.steps] if isinstance(preprocess, Pipeline) else [preprocess]
    if len(steps) == 1 and isinstance(steps[0], ColumnTransformer):
        from training.services import preprocess_output_columns

        try:
            return preprocess_output_columns(steps[0])
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
    for step in steps:
        name = type(step).__name__
        if name in ELEMENTWISE_STEPS:
            continue
        if isinstance(step, SimpleImputer) and not step.add_indicator \
                and len(getattr(step, "statistics_", [])) == len(columns) \
                and not np.any(pd.isna(np.asarray(step.statistics_, dtype=object))):
            continue
        return None
    return list(columns)


def choose(estimator, columns: list[str], classes: list[Any]) -> tuple[str, str]:
    """(explainer, output) for a fitted estimator; see the module docstring."""
    from sklearn.base import is_classifier

    final, preprocess = _final_and_preprocess(estimator)
    name = type(final).__name__
    classifier = is_classifier(estimator)
    multiclass = classifier and len(classes) > 2
    mappable = _input_owners(preprocess, columns) is not None
    if mappable and name in TREE_MODELS:
        if not classifier:
            return TREE, VALUE
        if name in PROBABILITY_TREES:
            return TREE, PROBABILITY
        if not multiclass:
            return TREE, LOG_ODDS
    if mappable and name in LINEAR_MODELS:
        if not classifier:
            return LINEAR, VALUE
        if not multiclass:
            logistic = name == "LogisticRegression" or (
                name == "SGDClassifier" and getattr(final, "loss", "") == "log_loss")
            return LINEAR, LOG_ODDS if logistic else VALUE
    if classifier and hasattr(estimator, "predict_proba"):
        return PERMUTATION, PROBABILITY
    if classifier and hasattr(estimator, "decision_function") and not multiclass:
        return PERMUTATION, VALUE
    if classifier:
        return PERMUTATION, PROBABILITY
    return PERMUTATION, VALUE


def named_output(estimator, X: pd.DataFrame, output: str, class_index: int, classifier: bool) -> np.ndarray:
    """The named output of the whole pipeline for each row of X.

    On one thread: these are small batches, and OpenMP threads of a histogram gradient boosting
    model spinning on a shared worker's busy cores cost far more than the prediction itself.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _named_output(estimator, X, output, class_index, classifier)


def _named_output(estimator, X, output: str, class_index: int, classifier: bool) -> np.ndarray:
    if not classifier:
        return np.asarray(estimator.predict(X), dtype=float).ravel()
    if output == PROBABILITY:
        return np.asarray(estimator.predict_proba(X), dtype=float)[:, class_index]
    scores = np.asarray(estimator.decision_function(X), dtype=float)
    return scores if scores.ndim == 1 else scores[:, class_index]


def _pick(array, class_index: int, n_outputs_axis: int):
    array = np.asarray(array, dtype=float)
    return array if array.ndim == n_outputs_axis else array[..., class_index]


def _owner_matrix(owners: list[str], columns: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(columns)}
    matrix = np.zeros((len(owners), len(columns)))
    for out, owner in enumerate(owners):
        matrix[out, index[owner]] = 1.0
    return matrix


class _Codec:
    """Input rows as a float matrix for SHAP's maskers: numbers as they are, anything else
    (text, booleans) as codes of the values seen; decoded back to a frame for the pipeline."""

    def __init__(self, frames: list[pd.DataFrame], columns: list[str]):
        import pandas as pd
        self.columns = columns
        joined = pd.concat([f[columns] for f in frames], ignore_index=True)
        self.numeric = {c for c in columns if pd.api.types.is_numeric_dtype(joined[c])
                        and not pd.api.types.is_bool_dtype(joined[c])}
        self.integer = {c for c in self.numeric if pd.api.types.is_integer_dtype(joined[c])}
        self.categories = {c: pd.unique(joined[c].dropna()) for c in columns if c not in self.numeric}

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        import pandas as pd
        out = np.empty((len(frame), len(self.columns)))
        for i, c in enumerate(self.columns):
            if c in self.numeric:
                out[:, i] = frame[c].astype(float).to_numpy()
            else:
                codes = pd.Categorical(frame[c], categories=self.categories[c]).codes.astype(float)
                codes[codes < 0] = np.nan
                out[:, i] = codes
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        import pandas as pd
        data = {}
        for i, c in enumerate(self.columns):
            column = matrix[:, i]
            if c in self.numeric:
                if c in self.integer and not np.isnan(column).any():
                    data[c] = column.astype(np.int64)
                else:
                    data[c] = column
            else:
                values = np.empty(len(column), dtype=object)
                ok = ~np.isnan(column)
                values[ok] = self.categories[c][column[ok].astype(int)]
                values[~ok] = None
                data[c] = values
        return pd.DataFrame(data, columns=self.columns)


def explain(*, estimator, X: pd.DataFrame, background: pd.DataFrame | None, classes: list[Any],
            explained_class: Any = None, explainer: str | None = None, output: str | None = None,
            permutation_evals: int | None = None) -> Explained:
    """SHAP values of ``estimator`` (a fitted model or pipeline) for the rows of X, by input column.

    ``background`` is needed by Linear (its feature means) and Permutation (what a hidden
    column is replaced with); Tree uses the trees' own training cover. ``explainer``/``output``
    override the choice (the per-prediction API re-uses the stored one).
    """
    import shap
    from sklearn.base import is_classifier

    columns = [str(c) for c in X.columns]
    classifier = is_classifier(estimator)
    if classifier:
        if explained_class is None:
            explained_class = classes[-1]
        class_index = [str(c) for c in classes].index(str(explained_class))
    else:
        explained_class, class_index = None, 0
    if explainer is None or output is None:
        explainer, output = choose(estimator, columns, classes)
    final, preprocess = _final_and_preprocess(estimator)
    notes: list[str] = []
    predictions = None

    values = base = None
    if explainer in (TREE, LINEAR):
        owners = _input_owners(preprocess, columns)
        Xt = np.asarray(preprocess.transform(X) if preprocess is not None else X, dtype=float)
        # The whole pipeline's output, from the rows it already transformed.
        predictions = named_output(final, Xt, output, class_index, classifier)
        try:
            if explainer == TREE:
                # Path-dependent: the trees' own cover stands in for the background, so no
                # background rows are needed and the sum is exact (no sampling).
                result = shap.TreeExplainer(final, feature_perturbation="tree_path_dependent")(
                    Xt, check_additivity=False)
            else:
                if background is None or not len(background):
                    raise ValueError("A linear explanation needs background rows.")
                Bt = np.asarray(preprocess.transform(background) if preprocess is not None else background,
                                dtype=float)
                result = shap.LinearExplainer(final, Bt)(Xt)
            raw = _pick(result.values, class_index, 2)
            raw_base = _pick(result.base_values, class_index, 1)
            values = raw @ _owner_matrix(owners, columns)
            base = float(np.mean(raw_base))
        except Exception as exc:  # noqa: BLE001 - an unsupported model falls back to permutation
            notes.append(f"{explainer} explainer unavailable ({type(exc).__name__}: {str(exc)[:200]}); "
                         "used permutation")
            explainer = PERMUTATION
            if output == LOG_ODDS and hasattr(estimator, "predict_proba"):
                output = PROBABILITY
    if explainer == PERMUTATION:
        predictions = named_output(estimator, X, output, class_index, classifier)
        if background is None or not len(background):
            background = X.head(50)
        codec = _Codec([X, background], columns)

        def f(matrix: np.ndarray) -> np.ndarray:
            return named_output(estimator, codec.decode(matrix), output, class_index, classifier)

        masker = shap.maskers.Independent(codec.encode(background), max_samples=len(background))
        evals = permutation_evals or 2 * (2 * len(columns) + 1)
        result = shap.PermutationExplainer(f, masker, seed=0)(codec.encode(X), max_evals=evals, silent=True)
        values = np.asarray(result.values, dtype=float)
        base = float(np.mean(np.asarray(result.base_values, dtype=float)))

    error = np.abs(base + values.sum(axis=1) - predictions)
    max_error = float(error.max()) if len(error) else 0.0
    scale = max(1.0, float(np.abs(predictions).max()) if len(predictions) else 1.0)
    return Explained(
        explainer=explainer, output=output, explained_class=explained_class, columns=columns,
        base_value=base, values=values, predictions=predictions, additivity_max_error=max_error,
        additivity_ok=bool(max_error <= ADDITIVITY_TOLERANCE * scale), notes=notes,
    )


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    import pandas as pd  # here, not at the top: web start does not load pandas

    if value is pd.NA or value is pd.NaT:
        return None
    return str(value) if not isinstance(value, (int, str)) else value


def rows_output(explained: Explained, X: pd.DataFrame, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows as {"input", "shap_values", "prediction"}."""
    rows = []
    records = X.head(limit)
    for i, (_, row) in enumerate(records.iterrows()):
        rows.append({
            "input": {c: _json_value(row[c]) for c in explained.columns},
            "shap_values": {c: float(v) for c, v in zip(explained.columns, explained.values[i], strict=True)},
            "prediction": float(explained.predictions[i]),
        })
    return rows


def global_importance(explained: Explained) -> dict[str, float]:
    """Mean |SHAP| per input column, largest first."""
    if len(explained.values):
        means = np.abs(explained.values).mean(axis=0)
    else:
        means = np.zeros(len(explained.columns))
    pairs = sorted(zip(explained.columns, means.tolist(), strict=True), key=lambda p: -p[1])
    return {c: float(v) for c, v in pairs}


def beeswarm_data(explained: Explained, X: pd.DataFrame, limit: int) -> dict[str, Any]:
    """Per column: SHAP values of up to ``limit`` rows and the column's value scaled to 0..1
    (numbers only: a category has no order, and is drawn grey)."""
    import pandas as pd
    n = min(limit, len(X))
    out: dict[str, Any] = {}
    for i, column in enumerate(explained.columns):
        raw = X[column].iloc[:n]
        scaled: list[float | None] = [None] * n
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            numbers = raw.astype(float).to_numpy()
            finite = numbers[np.isfinite(numbers)]
            if finite.size:
                low, high = float(finite.min()), float(finite.max())
                span = high - low or 1.0
                scaled = [None if not np.isfinite(v) else float((v - low) / span) for v in numbers]
        out[column] = {"shap": [float(v) for v in explained.values[:n, i]], "value": scaled}
    return out
