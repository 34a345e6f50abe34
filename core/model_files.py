"""What a model file may contain: one policy for training, which saves pipelines, and the
registry, which loads them.

A skops file names the type of every object it rebuilds. Beside skops' own
defaults (scikit-learn estimators, numpy arrays) a file may hold only the types
in ``TRUSTED_TYPES``; training refuses to save a pipeline holding anything else
and the registry refuses to load one, so a model Steward trained is always one
Steward serves.

Each trusted type is a plain data holder that cannot run code when rebuilt.
Some hold indices that scikit-learn's compiled code follows without bounds
checks (tree nodes, KD/ball tree nodes, distance weights), so a crafted file
could make ``predict()`` read outside its arrays: ``structure_check`` checks
every such index after loading, before anything uses the model.
"""

from __future__ import annotations

from typing import Any

TRUSTED_TYPES: frozenset[str] = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
})


class ModelFileRefused(Exception):
    """The model file holds something Steward does not save or load; the message says what."""


def model_dumps(estimator) -> tuple[bytes, list[str]]:
    """The estimator in skops format and the non-default types it holds (all trusted)."""
    import skops.io as sio

    data = sio.dumps(estimator)
    used = sorted(sio.get_untrusted_types(data=data))
    outside = [t for t in used if t not in TRUSTED_TYPES]
    if outside:
        raise ModelFileRefused(
            f"The fitted model holds types Steward does not load: {', '.join(outside[:5])}."
        )
    return data, used


def model_loads(data: bytes):
    """The estimator in a skops file, if it holds only trusted types and sound structures."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        used = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is a refusal, not a crash
        raise ModelFileRefused(f"The skops file cannot be read: {type(exc).__name__}: {exc}") from None
    outside = sorted(t for t in used if t not in TRUSTED_TYPES)
    if outside:
        raise ModelFileRefused(_untrusted(", ".join(outside[:5]) + "."))
    try:
        estimator = sio.loads(data, trusted=sorted(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise ModelFileRefused(_untrusted((str(exc).splitlines() or [""])[0])) from None
    except Exception as exc:  # noqa: BLE001
        raise ModelFileRefused(f"The skops file cannot be read: {type(exc).__name__}: {exc}") from None
    structure_check(estimator)
    return estimator


def _untrusted(types: str) -> str:
    return f"The skops file holds types Steward does not trust: {types}"


def structure_check(root) -> None:
    """Refuse structures whose indices point outside their own arrays or features.

    Tree children must come after their parent (scikit-learn builds trees that
    way), which also rules out cycles; split features must exist in the
    estimator's input.
    """
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.metrics import DistanceMetric
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    todo: list[tuple[Any, int | None]] = [(root, None)]
    while todo:
        obj, n_features = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Tree):
            _tree_check(obj.__getstate__(), obj.n_features, n_features)
        elif isinstance(obj, TreePredictor):
            _predictor_check(obj, n_features)
        elif isinstance(obj, (KDTree, BallTree)):
            state = obj.__getstate__()
            _binary_tree_check(state, bounds_rows=2 if isinstance(obj, KDTree) else 1, n_features=n_features)
            todo.append((state[11], state[0].shape[1]))
        elif isinstance(obj, DistanceMetric):
            _metric_check(obj, n_features)
        elif isinstance(obj, (list, tuple)):
            todo.extend((item, n_features) for item in obj)
        elif isinstance(obj, dict):
            todo.extend((item, n_features) for item in obj.values())
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                todo.extend((item, n_features) for item in obj.ravel())
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("sklearn"):
            inner = getattr(obj, "n_features_in_", n_features)
            todo.extend((value, inner) for value in vars(obj).values())


def _bad(what: str, reason: str) -> ModelFileRefused:
    return ModelFileRefused(f"The model file holds a malformed {what} ({reason}); it will not be loaded.")


def _tree_check(state: dict, tree_features: int, n_features: int | None) -> None:
    import numpy as np

    nodes = state["nodes"]
    count = int(state["node_count"])
    if count != len(nodes) or count < 1 or state["values"].shape[0] != count:
        raise _bad("decision tree", "node count does not match its arrays")
    if n_features is not None and tree_features != n_features:
        raise _bad("decision tree", "feature count does not match its estimator")
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    index = np.arange(count)
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        raise _bad("decision tree", "a node has only one child")
    inner = ~leaf
    if np.any((left[inner] <= index[inner]) | (left[inner] >= count) |
              (right[inner] <= index[inner]) | (right[inner] >= count)):
        raise _bad("decision tree", "a child index is out of range")
    if np.any((feature[inner] < 0) | (feature[inner] >= tree_features)):
        raise _bad("decision tree", "a split feature is out of range")


def _predictor_check(predictor, n_features: int | None) -> None:
    import numpy as np

    nodes = predictor.nodes
    count = len(nodes)
    inner = nodes["is_leaf"] == 0
    index = np.arange(count)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if count < 1 or np.any((left[inner] <= index[inner]) | (left[inner] >= count) |
                           (right[inner] <= index[inner]) | (right[inner] >= count)):
        raise _bad("decision tree", "a child index is out of range")
    feature = nodes["feature_idx"].astype(np.int64)[inner]
    if np.any(feature < 0) or (n_features is not None and np.any(feature >= n_features)):
        raise _bad("decision tree", "a split feature is out of range")
    categorical = inner & (nodes["is_categorical"] != 0)
    bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
    if np.any(nodes["bitset_idx"].astype(np.int64)[categorical] >= bitsets):
        raise _bad("decision tree", "a category bitset index is out of range")


def _binary_tree_check(state: tuple, *, bounds_rows: int, n_features: int | None) -> None:
    """A KD or ball tree: a query walks node i to nodes 2i+1 and 2i+2 until a leaf, then reads
    the samples idx_array[idx_start:idx_end] of data, all without bounds checks."""
    import numpy as np

    data, idx, nodes, bounds = state[0], state[1], state[2], state[3]
    n_levels, n_nodes, weights = int(state[5]), int(state[6]), state[12]
    if data.ndim != 2 or idx.ndim != 1 or len(idx) != data.shape[0] or data.shape[0] < 1:
        raise _bad("neighbour tree", "its sample index does not match its data")
    if n_features is not None and data.shape[1] != n_features:
        raise _bad("neighbour tree", "feature count does not match its estimator")
    if np.any((idx < 0) | (idx >= data.shape[0])):
        raise _bad("neighbour tree", "a sample index is out of range")
    if (n_nodes < 1 or len(nodes) != n_nodes or n_nodes != 2 ** n_levels - 1
            or bounds.shape != (bounds_rows, n_nodes, data.shape[1])):
        raise _bad("neighbour tree", "node count does not match its arrays")
    start, end = nodes["idx_start"], nodes["idx_end"]
    if np.any((start < 0) | (end < start) | (end > len(idx))):
        raise _bad("neighbour tree", "a node's sample range is out of range")
    inner = np.flatnonzero(nodes["is_leaf"] == 0)
    if inner.size and 2 * int(inner.max()) + 2 >= n_nodes:
        raise _bad("neighbour tree", "a child index is out of range")
    if weights is not None and np.shape(weights) != (data.shape[0],):
        raise _bad("neighbour tree", "its sample weights do not match its data")


def _metric_check(metric, n_features: int | None) -> None:
    # Minkowski's weights are read once per feature: none, or exactly one per feature.
    weights = metric.__getstate__()[1]
    if type(metric).__name__.startswith("MinkowskiDistance") and len(weights) not in (0, n_features):
        raise _bad("distance metric", "its weights do not match the features")
