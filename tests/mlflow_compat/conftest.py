"""An unchanged MLflow script, run as its own process with the real ``mlflow`` client, against a live
Steward: only the environment says where to log (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from accounts import services as account_services
from accounts.models import Role
from experiments.services import run_create
from registry import services as registry_services
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.registry.conftest import register, store_model

SCRIPTS = Path(__file__).parent / "scripts"


@dataclass
class MlflowUser:
    user: object
    token: str
    project: object


@pytest.fixture
def mlflow_user(transactional_db, artifact_root):
    project = ProjectFactory(slug="vision")
    user = UserFactory(username="ada")
    MembershipFactory(project=project, user=user, role=Role.EDITOR)
    _, raw = account_services.api_token_create(user=user, name="mlflow")
    return MlflowUser(user, raw, project)


def run_script(name: str, env: dict[str, str], *args: str, python: str | None = None,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """Run tests/mlflow_compat/scripts/<name> with only MLflow's variables added to a clean environment."""
    base = {k: val for k, val in os.environ.items() if not k.startswith("MLFLOW_")}
    base.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "GIT_PYTHON_REFRESH": "quiet",
                 "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "PYTHONDONTWRITEBYTECODE": "1"})
    base.update(env)
    result = subprocess.run(
        [python or sys.executable, str(SCRIPTS / name), *args], env=base, capture_output=True, text=True,
        timeout=timeout, cwd=str(SCRIPTS),
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-6000:]}"
        )
    return result


class Approval:
    """Stands in for the approved promotion request a protected alias moves with."""

    pk = 1


@pytest.fixture
def guarded(mlflow_user, artifact_root):
    """A model whose version 1 carries the protected alias "champion", set through an approval."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    run = run_create(project=mlflow_user.project, experiment="guarded", user=mlflow_user.user).run
    store_model(run, None, data=sio.dumps(LogisticRegression(max_iter=300).fit(X, y)), example=X.head(3))
    version = register(project=mlflow_user.project, run=run, user=mlflow_user.user, name="guarded")
    registry_services.alias_set_protected(model=version.model, alias="champion", version=version,
                                          approval=Approval())
    return version
