"""MLflow's model registry on Steward's: where a version's files are, its signature, its status.

A version's ``source`` must lie inside the artifacts of the run it is registered from:
``runs:/<run id>/<path>``, that run's ``mlflow-artifacts:`` URI, or ``models:/<logged model id>``
of a model that run logged. Local paths, other schemes and other runs are refused, the way
MLflow's own server learned to after CVE-2023-1177, CVE-2023-2780 and CVE-2024-1558.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError

from experiments.artifacts import artifact_path_clean, artifact_storage
from experiments.models import Artifact, Run
from mlflow_compat import errors, output
from mlflow_compat.models import LoggedModel
from registry.models import ModelVersion, VersionStatus

MLMODEL = "MLmodel"
MAX_MLMODEL_BYTES = 1024 * 1024
MAX_EXAMPLE_BYTES = 5 * 1024 * 1024
MLFLOW_TYPES = {"double": "double", "float": "double", "long": "long", "integer": "long",
                "boolean": "boolean", "string": "string"}
_RUNS_RE = re.compile(r"^runs:/([0-9a-fA-F-]{32,36})(?:/(.*))?\Z", re.DOTALL)
_MODELS_RE = re.compile(r"^models:/(m-[0-9a-f]{32})/?\Z")


def _bad_source(source: str, why: str) -> errors.MlflowError:
    return errors.invalid(f"Invalid model version source '{source[:300]}': {why}")


def source_resolve(*, source: Any, run: Run | None) -> tuple[Run, str]:
    """(the run, the folder among its artifacts) a version's ``source`` names; ``run`` is the run_id
    the client sent, which the source must agree with."""
    if not isinstance(source, str) or not source:
        raise errors.invalid("Missing value for required parameter 'source'.")
    found_run: Run | None = None
    folder = ""
    if match := _MODELS_RE.match(source):
        model = LoggedModel.objects.select_related("run").filter(
            pk=match.group(1), deleted_at__isnull=True
        ).first()
        if model is None:
            raise _bad_source(source, "no such logged model.")
        found_run, folder = model.run, model.artifact_path
    elif match := _RUNS_RE.match(source):
        from mlflow_compat.context import run_uuid

        found_run = Run.objects.filter(pk=run_uuid(match.group(1))).first()
        folder = match.group(2) or ""
    elif source.startswith(output.ARTIFACT_SCHEME):
        parsed = urlparse(source)
        parts = parsed.path.strip("/").split("/", 3)
        if parsed.netloc:
            raise _bad_source(source, "it names another server.")
        if len(parts) < 3 or parts[2] != "artifacts" or parsed.query or parsed.fragment:
            raise _bad_source(source, "not inside a run's artifacts.")
        from mlflow_compat.context import run_uuid

        try:
            found_run = Run.objects.filter(pk=run_uuid(parts[1]), experiment_id=int(parts[0])).first()
        except (ValueError, errors.MlflowError):
            found_run = None
        folder = parts[3] if len(parts) == 4 else ""
    else:
        raise _bad_source(source, "a model version's source must be inside its run's artifacts "
                                  "(runs:/<run id>/<path>, an mlflow-artifacts: URI or models:/<model id>).")
    if found_run is None:
        raise _bad_source(source, "no such run.")
    if run is not None and found_run.pk != run.pk:
        raise _bad_source(source, "it is not inside the artifacts of run_id's run.")
    folder = folder.strip("/")
    if folder:
        try:
            folder = artifact_path_clean(folder)
        except ValidationError as exc:
            raise _bad_source(source, "; ".join(exc.messages)) from None
    return found_run, folder


def _read_artifact(run: Run, path: str, limit: int) -> bytes | None:
    artifact = Artifact.objects.filter(run=run, path=path).first()
    if artifact is None or artifact.size > limit:
        return None
    try:
        with artifact_storage().open(artifact.storage_name, "rb") as blob:
            return blob.read(limit + 1)
    except FileNotFoundError:
        return None


def mlmodel_read(run: Run, folder: str) -> dict | None:
    import yaml

    raw = _read_artifact(run, posixpath.join(folder, MLMODEL) if folder else MLMODEL, MAX_MLMODEL_BYTES)
    if raw is None:
        return None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise errors.invalid("The model's MLmodel file is not readable YAML.") from None
    return data if isinstance(data, dict) else None


def signature_from_mlmodel(mlmodel: dict | None) -> dict | None:
    """Steward's column signature from an MLmodel's column-based input schema; None for a tensor
    schema or none (the check then takes the estimator's own feature names or count)."""
    inputs = ((mlmodel or {}).get("signature") or {}).get("inputs")
    if not isinstance(inputs, str):
        return None
    try:
        spec = json.loads(inputs)
    except ValueError:
        return None
    if not isinstance(spec, list) or not spec:
        return None
    columns = []
    for item in spec:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        dtype = MLFLOW_TYPES.get(item.get("type"))
        if dtype is None:
            return None
        columns.append({"name": item["name"], "dtype": dtype,
                        "nullable": not item.get("required", True), "pii": False})
    return {"columns": columns}


def example_read(run: Run, folder: str, mlmodel: dict | None, signature: dict | None) -> dict | None:
    """MLflow's input example (pandas "split" JSON without dtypes) as Steward's example rows."""
    info = (mlmodel or {}).get("saved_input_example_info") or {}
    name = info.get("artifact_path") if isinstance(info, dict) else None
    raw = _read_artifact(run, posixpath.join(folder, name or "input_example.json"), MAX_EXAMPLE_BYTES)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, dict) and "dataframe_split" in data:
        data = data["dataframe_split"]
    if not isinstance(data, dict):
        return None
    columns, rows = data.get("columns"), data.get("data")
    if not isinstance(columns, list) or not isinstance(rows, list) or not rows:
        return None
    if not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        return None
    by_name = {c["name"]: c["dtype"] for c in (signature or {}).get("columns", [])}
    dtypes = []
    for i, column in enumerate(columns):
        if column in by_name:
            dtypes.append(by_name[column])
            continue
        values = [r[i] for r in rows if r[i] is not None]
        if values and all(isinstance(x, bool) for x in values):
            dtypes.append("boolean")
        elif values and all(isinstance(x, int) and not isinstance(x, bool) for x in values):
            dtypes.append("long")
        elif all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
            dtypes.append("double")
        else:
            dtypes.append("string")
    return {"columns": [str(c) for c in columns], "dtypes": dtypes, "data": rows[:1000]}


# --- versions in MLflow's words -----------------------------------------------------------------


def version_folder(version: ModelVersion) -> str:
    return posixpath.dirname(version.artifact_path)


def version_source(version: ModelVersion) -> str:
    folder = version_folder(version)
    if re.fullmatch(r"models/m-[0-9a-f]{32}", folder):
        return f"models:/{folder[len('models/'):]}"
    return f"runs:/{version.run_id.hex}/{folder}" if folder else f"runs:/{version.run_id.hex}"


def version_status(version: ModelVersion) -> tuple[str, str]:
    """MLflow's (status, status_message). A pickle is stored (READY to MLflow, whose registration
    must neither hang nor fail for it) and its message says what Steward needs before loading it."""
    if version.is_pickle:
        if not settings.ALLOW_PICKLE_MODELS:
            return "READY", (
                f"Stored, but Steward never loads {version.model_format} model files while pickle models "
                "are off: re-log the model with mlflow.sklearn.log_model(..., "
                "serialization_format='skops') (MLflow 3) and register that version."
            )
        if version.status == VersionStatus.READY:
            return "READY", ""
        return "READY", (version.status_message or "") + (
            " Steward loads it once an instance administrator trusts its sha256."
        )
    if version.status == VersionStatus.READY:
        return "READY", ""
    if version.status == VersionStatus.FAILED:
        return "FAILED_REGISTRATION", version.status_message
    return "PENDING_REGISTRATION", version.status_message
