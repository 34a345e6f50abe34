"""`steward runs list|show`: the short ids it prints are what `show` takes; the model's metrics come first."""

from __future__ import annotations

import pytest
import steward

from tests.sdk.conftest import run_cli

pytestmark = pytest.mark.live

FIRST = "ab12cd34-0000-4000-8000-000000000001"
SECOND = "ab12ef56-0000-4000-8000-000000000002"


@pytest.fixture
def two_runs(steward_server, account):
    with steward.Client(url=steward_server.url, token=account.token, project=account.project) as client:
        for run_id, acc in ((FIRST, 0.9), (SECOND, 0.8)):
            client.create_run(None, "cli", run_id=run_id, name=f"acc {acc}")
            client.log_batch(run_id, metrics=[
                {"key": "acc", "value": acc, "step": 0},
                {"key": "loss", "value": 1 - acc, "step": 0},
                {"key": "system/cpu_percent", "value": 55.0, "step": 0},
                {"key": "system/memory_percent", "value": 20.0, "step": 0},
                {"key": "system/process_rss_mb", "value": 300.0, "step": 0},
            ])
    return account.env(steward_server.url)


def test_runs_list_shows_the_models_metrics_by_default(two_runs):
    listed = run_cli("runs", "list", env=two_runs)
    assert listed.returncode == 0, listed.stderr
    header = listed.stdout.splitlines()[0].split()
    assert header == ["id", "experiment", "name", "status", "started", "acc", "loss"]
    assert "ab12cd34" in listed.stdout and "ab12ef56" in listed.stdout


def test_runs_list_metrics_option_chooses_the_columns(two_runs):
    listed = run_cli("runs", "list", "--metrics", "system/cpu_percent,acc", env=two_runs)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[-2:] == ["system/cpu_percent", "acc"]
    first = next(line for line in lines if line.startswith("ab12cd34"))
    assert first.split()[-2:] == ["55", "0.9"]


def test_runs_show_takes_the_short_id_runs_list_prints(two_runs):
    shown = run_cli("runs", "show", "ab12cd34", env=two_runs)
    assert shown.returncode == 0, shown.stderr
    assert f"Run {FIRST}" in shown.stdout and "acc = 0.9" in shown.stdout


def test_an_ambiguous_prefix_lists_the_candidates(two_runs):
    shown = run_cli("runs", "show", "ab12", env=two_runs)
    assert shown.returncode == 1
    assert "fits 2 runs" in shown.stderr
    assert FIRST in shown.stderr and SECOND in shown.stderr and "acc 0.8" in shown.stderr


def test_an_unknown_prefix_says_so(two_runs):
    shown = run_cli("runs", "show", "ffff0000", env=two_runs)
    assert shown.returncode == 1 and "No run you can see has an id starting with 'ffff0000'" in shown.stderr
    garbage = run_cli("runs", "show", "not-an-id", env=two_runs)
    assert garbage.returncode == 1 and "give a run id" in garbage.stderr
