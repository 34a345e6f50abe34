"""examples/train_sklearn.py runs as the guide says, and its run holds what the example promises."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from experiments.models import Run
from tests.sdk.conftest import REPO

pytestmark = pytest.mark.live


def test_the_example_script_logs_a_run(steward_server, account):
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "train_sklearn.py"), "--epochs", "3"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, **account.env(steward_server.url)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = Run.objects.get(project__slug=account.project)
    assert run.status == "FINISHED" and run.name.startswith("sgd alpha=")
    assert {"val_accuracy", "test_roc_auc"} <= set(run.latest_metrics.values_list("key", flat=True))
    assert run.artifacts.filter(path="model/model.skops").exists()
    assert f"Run {run.pk} logged" in done.stdout
