"""The only way a stored model file becomes a Python object.

- skops files load with an explicit list of trusted types; anything else in
  the file refuses to load.
- pickle/joblib files load only if an owner trusted that exact sha256 in the
  project; otherwise they stay bytes in storage, in the web process and in
  every worker.
- ONNX files are data, not code: ONNX Runtime executes a fixed set of operators.

Every load reads the stored bytes once, checks their sha256 against the one
recorded at registration and deserialises those same bytes, so a file swapped
in storage after the check is never what gets loaded.
"""

from __future__ import annotations

import hashlib
import io
import pickle  # noqa: S403 - used only behind the owner-trusted sha256 check below

from django.conf import settings

from experiments.artifacts import artifact_storage
from registry.models import ModelFormat, ModelVersion, TrustedModelHash

# Types beyond skops' own defaults (scikit-learn estimators, numpy arrays) that
# Steward's trained models contain. Each is a plain data holder of scikit-learn
# or numpy; none can run code when it is rebuilt.
TRUSTED_SKOPS_TYPES = [
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
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


def pickle_trust(version: ModelVersion):
    return TrustedModelHash.objects.filter(
        project_id=version.model.project_id, sha256=version.sha256
    ).select_related("trusted_by").first()


def estimator_load(version: ModelVersion):
    """The fitted scikit-learn object of ``version`` (for checks, scikit-learn serving, explanations)."""
    if version.model_format == ModelFormat.SKOPS:
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

        data = stored_bytes(storage_name=version.storage_name, sha256=version.sha256)
        try:
            return sio.loads(data, trusted=TRUSTED_SKOPS_TYPES)
        except UntrustedTypesFoundException as exc:
            raise ModelLoadRefused(f"The skops file holds types Steward does not trust: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a refusal, not a crash
            raise ModelLoadRefused(f"The skops file cannot be read: {type(exc).__name__}: {exc}") from None
    if version.model_format in (ModelFormat.PICKLE, ModelFormat.JOBLIB):
        # Checked before a single byte is read: an untrusted pickle is never deserialised.
        if pickle_trust(version) is None:
            raise ModelLoadRefused(
                f"This {version.model_format} file is not trusted: an owner of the project must trust "
                f"sha256 {version.sha256} before it can be loaded."
            )
        data = stored_bytes(storage_name=version.storage_name, sha256=version.sha256)
        if version.model_format == ModelFormat.JOBLIB:
            import joblib

            return joblib.load(io.BytesIO(data))
        return pickle.loads(data)  # noqa: S301 - an owner trusted this exact sha256
    raise ModelLoadRefused(f"Unknown model format '{version.model_format}'.")


def onnx_bytes_load(version: ModelVersion) -> bytes:
    if not version.onnx_storage_name:
        raise ModelLoadRefused("This version has no verified ONNX export.")
    return stored_bytes(storage_name=version.onnx_storage_name, sha256=version.onnx_sha256)
