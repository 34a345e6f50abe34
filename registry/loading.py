"""The only way a stored model file becomes a Python object.

- skops files load with an explicit list of trusted types; anything else in
  the file refuses to load.
- pickle/joblib files never load while ALLOW_PICKLE_MODELS is off (the
  default); with it on, only if an instance administrator (staff) trusted that
  exact sha256 in the project. Otherwise they stay bytes in storage, in the
  web process and in every worker.
- ONNX files are data, not code: ONNX Runtime executes a fixed set of operators.

Every load reads the stored bytes once, checks their sha256 against the one
recorded at registration and deserialises those same bytes, so a file swapped
in storage after the check is never what gets loaded.
"""

from __future__ import annotations

import hashlib
import io
import pickle  # noqa: S403 - used only behind ALLOW_PICKLE_MODELS and the staff-trusted sha256 below

from django.conf import settings

from experiments.artifacts import artifact_storage
from registry.models import ModelFormat, ModelVersion, TrustedModelHash

# Types beyond skops' own defaults (scikit-learn estimators, numpy arrays) that
# Steward's trained models contain. Each is a plain data holder; none can run
# code when rebuilt. The two tree types hold node indices that scikit-learn's
# compiled code follows without bounds checks, so a crafted file could make
# predict() read outside its arrays: every tree is checked after loading
# (``trees_check``). KD/ball trees are left out for the same reason.
TRUSTED_SKOPS_TYPES = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
]


class ModelLoadRefused(Exception):
    """The stored model may not be loaded (untrusted, tampered with, unknown format)."""


def stored_bytes(*, storage_name: str, sha256: str) -> bytes:
    limit = settings.MAX_ARTIFACT_BYTES
    digest = hashlib.sha256()
    parts = []
    size = 0
    try:
        blob = artifact_storage().open(storage_name, "rb")
    except FileNotFoundError:
        raise ModelLoadRefused("The model file is missing from storage.") from None
    with blob:
        while chunk := blob.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise ModelLoadRefused("The model file is larger than the artifact limit.")
            digest.update(chunk)
            parts.append(chunk)
    if digest.hexdigest() != sha256:
        raise ModelLoadRefused(
            "The stored model file does not match the sha256 recorded at registration; "
            "it was changed in storage and will not be loaded."
        )
    return b"".join(parts)


def trusts_in_force():
    """Trusted hashes that count: recorded by a user who is staff and active now.

    A trust recorded by anyone else does not, including those project owners
    gave before trusting became an instance administrator's decision.
    """
    return TrustedModelHash.objects.filter(
        trusted_by__is_staff=True, trusted_by__is_active=True
    ).select_related("trusted_by")


def pickle_trust(version: ModelVersion) -> TrustedModelHash | None:
    return trusts_in_force().filter(project_id=version.model.project_id, sha256=version.sha256).first()


def pickle_refusal(version: ModelVersion) -> str:
    """Why a pickle/joblib version is not loaded on a server with pickles off, and what to do instead."""
    return (
        f"Pickle and joblib model files are off on this server (ALLOW_PICKLE_MODELS): loading this "
        f"{version.model_format} file would run whatever code it carries, so it is stored but never loaded. "
        f"Log the model as skops instead: with the steward SDK, "
        f'run.log_model(model, registered_model="{version.model.name}", input_example=X) writes '
        "model/model.skops and registers it."
    )


def estimator_load(version: ModelVersion):
    """The fitted scikit-learn object of ``version`` (for checks, scikit-learn serving, explanations)."""
    if version.model_format == ModelFormat.SKOPS:
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

        data = stored_bytes(storage_name=version.storage_name, sha256=version.sha256)
        try:
            estimator = sio.loads(data, trusted=TRUSTED_SKOPS_TYPES)
        except UntrustedTypesFoundException as exc:
            types = str(exc).split("\n")[0]
            raise ModelLoadRefused(f"The skops file holds types Steward does not trust: {types}") from None
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a refusal, not a crash
            raise ModelLoadRefused(f"The skops file cannot be read: {type(exc).__name__}: {exc}") from None
        trees_check(estimator)
        return estimator
    if version.model_format in (ModelFormat.PICKLE, ModelFormat.JOBLIB):
        # Checked before a single byte is read: an untrusted pickle is never deserialised.
        if not settings.ALLOW_PICKLE_MODELS:
            raise ModelLoadRefused(pickle_refusal(version))
        if pickle_trust(version) is None:
            raise ModelLoadRefused(
                f"This {version.model_format} file is not trusted: an instance administrator must trust "
                f"sha256 {version.sha256} before it can be loaded."
            )
        data = stored_bytes(storage_name=version.storage_name, sha256=version.sha256)
        if version.model_format == ModelFormat.JOBLIB:
            import joblib

            return joblib.load(io.BytesIO(data))
        return pickle.loads(data)  # noqa: S301 - pickles are on and staff trusted this exact sha256
    raise ModelLoadRefused(f"Unknown model format '{version.model_format}'.")


def onnx_bytes_load(version: ModelVersion) -> bytes:
    if not version.onnx_storage_name:
        raise ModelLoadRefused("This version has no verified ONNX export.")
    return stored_bytes(storage_name=version.onnx_storage_name, sha256=version.onnx_sha256)


def trees_check(root) -> None:
    """Refuse trees whose node indices point outside their own arrays or features.

    Children must come after their parent (scikit-learn builds trees that way),
    which also rules out cycles; split features must exist in the estimator's input.
    """
    import numpy as np
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    todo = [(root, None)]
    while todo:
        obj, n_features = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Tree):
            _tree_check(obj.__getstate__(), obj.n_features, n_features)
        elif isinstance(obj, TreePredictor):
            _predictor_check(obj, n_features)
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


def _bad_tree(reason: str) -> ModelLoadRefused:
    return ModelLoadRefused(
        f"The model file holds a malformed decision tree ({reason}); it will not be loaded."
    )


def _tree_check(state: dict, tree_features: int, n_features: int | None) -> None:
    import numpy as np

    nodes = state["nodes"]
    count = int(state["node_count"])
    if count != len(nodes) or count < 1 or state["values"].shape[0] != count:
        raise _bad_tree("node count does not match its arrays")
    if n_features is not None and tree_features != n_features:
        raise _bad_tree("feature count does not match its estimator")
    left, right, feature = nodes["left_child"], nodes["right_child"], nodes["feature"]
    index = np.arange(count)
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        raise _bad_tree("a node has only one child")
    inner = ~leaf
    if np.any((left[inner] <= index[inner]) | (left[inner] >= count) |
              (right[inner] <= index[inner]) | (right[inner] >= count)):
        raise _bad_tree("a child index is out of range")
    if np.any((feature[inner] < 0) | (feature[inner] >= tree_features)):
        raise _bad_tree("a split feature is out of range")


def _predictor_check(predictor, n_features: int | None) -> None:
    import numpy as np

    nodes = predictor.nodes
    count = len(nodes)
    inner = nodes["is_leaf"] == 0
    index = np.arange(count)
    left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
    if count < 1 or np.any((left[inner] <= index[inner]) | (left[inner] >= count) |
                           (right[inner] <= index[inner]) | (right[inner] >= count)):
        raise _bad_tree("a child index is out of range")
    feature = nodes["feature_idx"].astype(np.int64)[inner]
    if np.any(feature < 0) or (n_features is not None and np.any(feature >= n_features)):
        raise _bad_tree("a split feature is out of range")
    categorical = inner & (nodes["is_categorical"] != 0)
    bitsets = min(len(predictor.raw_left_cat_bitsets), len(predictor.binned_left_cat_bitsets))
    if np.any(nodes["bitset_idx"].astype(np.int64)[categorical] >= bitsets):
        raise _bad_tree("a category bitset index is out of range")
