"""Every SDK call against a real server, and what comes back."""

from __future__ import annotations

import math
import random
import stat
import time

import numpy as np
import pytest
import requests
import steward

from accounts.models import Role
from experiments.models import Metric, Run
from tests.sdk.conftest import make_account, run_cli

pytestmark = pytest.mark.live


def test_run_round_trip(steward_server, account, tmp_path):
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG fake image bytes")
    outdir = tmp_path / "outdir"
    (outdir / "sub").mkdir(parents=True)
    (outdir / "a.txt").write_text("alpha")
    (outdir / "sub" / "b.json").write_text('{"b": 1}')
    steward.seed_everything(1234)
    first_draw = random.random()

    with steward.start_run(experiment="baseline", name="rt", tags={"team": "risk"}) as run:
        assert steward.active_run() is run
        run.log_param("lr", 0.01)
        run.log_params({"depth": 3, "balanced": True, "solver": "lbfgs"})
        run.log_param("lr", 0.01)  # the same value again is fine
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step * 10)
        run.log_metrics({"acc": 0.9, "f1": 0.8}, step=40)
        run.log_metric("odd", math.nan)
        run.log_metric("odd", math.inf)
        run.log_metric("odd", -math.inf)
        run.set_tag("stage", "dev")
        run.set_tags({"stage": "prod", "owner": account.username})
        uploaded = run.log_artifact(plot, artifact_path="plots")
        run.log_artifacts(outdir, artifact_path="out")
        steward.flush()
    assert uploaded["path"] == "plots/plot.png" and uploaded["size"] == plot.stat().st_size
    assert run.status == "FINISHED" and steward.active_run() is None

    client = steward.Client()
    stored = client.get_run(run.id)
    assert stored.status == "FINISHED"
    assert stored.params == {"lr": "0.01", "depth": "3", "balanced": "True", "solver": "lbfgs"}
    assert stored.metrics["loss"] == pytest.approx(0.2)
    assert stored.metric_details["loss"]["step"] == 40
    assert stored.metrics["acc"] == 0.9 and stored.metrics["f1"] == 0.8
    assert stored.metrics["odd"] == -math.inf
    assert stored.tags == {"team": "risk", "stage": "prod", "owner": account.username}
    assert stored.info["experiment"] == "baseline" and stored.name == "rt"
    assert stored.info["author"] == account.username and stored.info["end_time"]
    assert stored.info["seed"] == 1234
    source = stored.info["source"]
    assert source["python_version"] and source["host"] and source["entry_point"]

    history = client.get_metric_history(run.id, "loss")
    assert [p["step"] for p in history] == [0, 10, 20, 30, 40]
    assert [p["value"] for p in history] == pytest.approx([1, 0.5, 1 / 3, 0.25, 0.2])
    odd = [p["value"] for p in client.get_metric_history(run.id, "odd")]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf]

    # seed_everything seeded random and NumPy the way a re-run would
    random.seed(1234)
    assert random.random() == first_draw
    steward.seed_everything(7)
    a = np.random.rand(3)
    steward.seed_everything(7)
    assert (np.random.rand(3) == a).all()

    files = {f["path"]: f for f in client.list_artifacts(run.id, recursive=True) if not f["is_dir"]}
    assert {"plots/plot.png", "out/a.txt", "out/sub/b.json", "steward/requirements.txt"} <= set(files)
    local = client.download_artifact(run.id, "plots/plot.png", tmp_path / "dl")
    assert local == tmp_path / "dl" / "plots" / "plot.png"
    assert local.read_bytes() == plot.read_bytes()
    requirements = client.download_artifact(run.id, "steward/requirements.txt", tmp_path / "dl").read_text()
    assert "requests==" in requirements
    downloaded = client.download_artifacts(run.id, "out", tmp_path / "all")
    assert downloaded == tmp_path / "all" / "out"
    assert sorted(p.relative_to(downloaded).as_posix() for p in downloaded.rglob("*") if p.is_file()) == [
        "a.txt", "sub/b.json"]
    assert (downloaded / "sub" / "b.json").read_text() == '{"b": 1}'
    one = client.download_artifacts(run.id, "out/a.txt", tmp_path / "one")
    assert one == tmp_path / "one" / "out" / "a.txt" and one.read_text() == "alpha"

    found = client.search_runs(account.project, experiment="baseline", filter="metrics.acc > 0.5")
    assert [r.id for r in found] == [run.id]
    assert client.search_runs(account.project, filter="metrics.acc > 0.95") == []
    frame = client.search_runs_df(account.project, order_by="metrics.acc DESC")
    assert frame.loc[0, "run_id"] == run.id and frame.loc[0, "params.lr"] == "0.01"
    assert frame.loc[0, "metrics.acc"] == 0.9 and frame.loc[0, "tags.stage"] == "prod"

    # a background job over this run, polled until it is done
    queued = requests.post(f"{steward_server.url}/api/v1/runs/{run.id}/summary/",
                           headers={"Authorization": f"Bearer {account.token}"}, timeout=30)
    assert queued.status_code == 202
    job = client.wait_for_job(queued.json()["id"], timeout=60, poll=0.2)
    assert job["status"] == "succeeded" and job["kind"] == "run_summary"
    assert job["result"]["metrics"]["loss"]["count"] == 5
    client.close()


def test_exception_in_block_ends_run_failed_with_the_error(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token)
    with pytest.raises(ZeroDivisionError):
        with steward.start_run(project=account.project, experiment="crash") as run:
            run.log_metric("loss", 0.5)
            1 / 0  # noqa: B018
    with steward.Client() as client:
        stored = client.get_run(run.id)
    assert stored.status == "FAILED"
    assert "ZeroDivisionError" in stored.info["error"]
    assert stored.metrics == {"loss": 0.5}


def test_source_and_packages_are_captured(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token)
    with steward.start_run(project=account.project, experiment="capture") as run:
        pass
    row = Run.objects.get(pk=run.id)
    assert row.python_version and row.host and row.entry_point
    assert "requests" in {name.lower() for name in row.packages}
    # this test file lives in a git checkout: commit and branch are recorded
    if row.git_commit:
        assert len(row.git_commit) == 40 and row.git_dirty is not None


def test_several_identities_in_one_script(steward_server, account):
    other = make_account()
    mine = steward.Client(url=steward_server.url, token=account.token)
    theirs = steward.Client(url=steward_server.url, token=other.token)
    assert mine.me()["username"] == account.username
    assert theirs.me()["username"] == other.username
    with mine.start_run(account.project, "ids", capture=False) as run:
        run.log_metric("m", 1)
    assert mine.get_run(run.id).metrics == {"m": 1.0}
    with pytest.raises(steward.NotFoundError):
        theirs.get_run(run.id)
    mine.close()
    theirs.close()


def test_system_metrics_are_sampled(steward_server, account):
    pytest.importorskip("psutil")
    steward.configure(url=steward_server.url, token=account.token)
    with steward.start_run(project=account.project, experiment="sys", system_metrics=0.1,
                           capture=False) as run:
        time.sleep(0.5)
    keys = set(Metric.objects.filter(run_id=run.id).values_list("key", flat=True))
    assert {"system/cpu_percent", "system/memory_percent", "system/process_rss_mb"} <= keys


def test_cli_login_writes_private_config_and_lists_runs(steward_server, account, tmp_path):
    home = tmp_path / "home"
    done = run_cli("login", "--url", steward_server.url, "--token", account.token,
                   "--project", account.project)
    assert done.returncode == 0, done.stderr
    assert f"as {account.username}" in done.stdout
    config = home / ".steward" / "config"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert account.token in config.read_text()

    # configuration now comes from the file alone
    with steward.start_run(experiment="cli", name="from-config", capture=False) as run:
        run.log_param("lr", 0.1)
        run.log_metric("acc", 0.75)

    listed = run_cli("runs", "list")
    assert listed.returncode == 0, listed.stderr
    assert run.id[:8] in listed.stdout and "from-config" in listed.stdout
    shown = run_cli("runs", "show", run.id)
    assert shown.returncode == 0, shown.stderr
    assert "lr = 0.1" in shown.stdout and "acc = 0.75" in shown.stdout and "FINISHED" in shown.stdout

    refused = run_cli("login", "--url", steward_server.url, "--token", "stw_wrong")
    assert refused.returncode == 1 and "401" in refused.stderr


def test_viewer_cannot_start_a_run(steward_server, account):
    from accounts.models import Project

    viewer = make_account(Role.VIEWER, project=Project.objects.get(slug=account.project))
    steward.configure(url=steward_server.url, token=viewer.token)
    with pytest.raises(steward.PermissionDeniedError, match="editor"):
        steward.start_run(project=account.project, experiment="x", capture=False)
