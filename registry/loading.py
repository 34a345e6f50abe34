"""The only way a stored model file becomes a Python object.

- skops files load under the one model file policy (``core.model_files``):
  only its trusted types, with every tree's indices checked.
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

from core.model_files import ModelFileRefused, model_loads
from experiments.artifacts import artifact_storage
from registry.models import ModelFormat, ModelVersion, TrustedModelHash


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
        data = stored_bytes(storage_name=version.storage_name, sha256=version.sha256)
        try:
            return model_loads(data)
        except ModelFileRefused as exc:
            raise ModelLoadRefused(str(exc)) from None
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
