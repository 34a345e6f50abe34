"""Nothing lost, nothing doubled: volume, outages, lost responses, crashes, offline mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
import steward
from django.db.models import Count

from experiments.models import Metric, Param, Run, Tag
from tests.sdk.conftest import Proxy, run_cli

pytestmark = pytest.mark.live


def assert_each_step_once(run_id: str, key: str, steps: range) -> None:
    counts = dict(
        Metric.objects.filter(run_id=run_id, key=key).values_list("step").annotate(n=Count("id"))
    )
    assert len(counts) == len(steps), f"{len(steps) - len(counts)} steps missing"
    assert set(counts) == set(steps)
    assert set(counts.values()) == {1}, "some points were stored twice"


def test_100k_log_metric_calls_arrive_exactly_once(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token)
    with steward.start_run(project=account.project, experiment="volume", capture=False) as run:
        started = time.perf_counter()
        for step in range(100_000):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        loop_seconds = time.perf_counter() - started
    client = steward.Client()
    history = client.get_metric_history(run.id, "loss")
    client.close()
    assert len(history) == 100_000
    assert [p["step"] for p in history] == list(range(100_000))
    assert history[-1]["value"] == pytest.approx(1e-5)
    assert_each_step_once(run.id, "loss", range(100_000))
    # The loop only appends to memory; the 10 network round trips happen beside it.
    assert loop_seconds < 30


def test_server_stopped_mid_run_then_steward_sync_stores_every_point_once(own_server, account, sdk_sandbox):
    own_server.start()
    steward.configure(url=own_server.url, token=account.token)
    run = steward.start_run(project=account.project, experiment="outage", capture=False)
    run.log_param("lr", 0.1)
    for step in range(0, 1000):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    assert Metric.objects.filter(run_id=run.id).count() == 1000

    own_server.stop()
    started = time.perf_counter()
    for step in range(1000, 3000):
        run.log_metric("loss", float(step), step=step)
    run.set_tag("phase", "during-outage")
    run.log_param("batch_size", 64)
    run.flush()  # gives up after the retry budget and spools; it does not raise
    for step in range(3000, 4000):
        run.log_metric("loss", float(step), step=step)
    run.end()
    assert time.perf_counter() - started < 30, "logging through an outage must not hang the script"
    assert run.spooled >= 2
    assert list(sdk_sandbox.rglob("*.batch.json")), "the outage's batches are on disk"
    assert Metric.objects.filter(run_id=run.id).count() == 1000

    own_server.start()
    done = run_cli("sync", env=account.env(own_server.url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Sent" in done.stdout
    assert not list(sdk_sandbox.rglob("*.json")), "the spool is empty after sync"
    assert_each_step_once(run.id, "loss", range(4000))
    row = Run.objects.get(pk=run.id)
    assert row.status == "FINISHED" and row.end_time is not None
    params = dict(Param.objects.filter(run=row).values_list("key", "value"))
    assert params == {"lr": "0.1", "batch_size": "64"}
    assert Tag.objects.get(run=row, key="phase").value == "during-outage"

    again = run_cli("sync", env=account.env(own_server.url))
    assert again.returncode == 0 and "Nothing to send" in again.stdout
    assert Metric.objects.filter(run_id=run.id).count() == 4000


def test_run_recovers_by_itself_when_the_network_comes_back(steward_server, account, sdk_sandbox):
    proxy = Proxy(steward_server.port)
    steward.configure(url=proxy.url, token=account.token)
    try:
        with steward.start_run(project=account.project, experiment="blip", capture=False) as run:
            proxy.down()
            for step in range(500):
                run.log_metric("acc", step / 500, step=step)
            run.flush()
            assert list(sdk_sandbox.rglob("*.batch.json"))
            proxy.up()
            for step in range(500, 1000):
                run.log_metric("acc", step / 500, step=step)
            deadline = time.monotonic() + 30
            while Metric.objects.filter(run_id=run.id).count() < 1000 and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        proxy.close()
    assert_each_step_once(run.id, "acc", range(1000))
    assert not list(sdk_sandbox.rglob("*.json")), "the run replayed its own spool"
    assert Run.objects.get(pk=run.id).status == "FINISHED"


def test_run_started_while_server_down_is_created_by_the_next_run(steward_server, account, sdk_sandbox):
    proxy = Proxy(steward_server.port, start_down=True)
    steward.configure(url=proxy.url, token=account.token)
    with steward.start_run(project=account.project, experiment="late", name="offline-start",
                           capture=False) as offline_run:
        offline_run.log_param("lr", 0.3)
        for step in range(300):
            offline_run.log_metric("loss", step * 0.5, step=step)
    assert not Run.objects.filter(pk=offline_run.id).exists()
    assert list(sdk_sandbox.rglob("*.create.json"))

    proxy.up()
    try:
        with steward.start_run(project=account.project, experiment="late", capture=False) as next_run:
            next_run.log_metric("x", 1)
    finally:
        proxy.close()
    assert next_run.sync_report is not None and next_run.sync_report.ok
    row = Run.objects.get(pk=offline_run.id)  # the client-side id became the server's id
    assert row.name == "offline-start" and row.status == "FINISHED"
    assert_each_step_once(offline_run.id, "loss", range(300))
    assert not list(sdk_sandbox.rglob("*.json"))


def test_offline_mode_logs_only_to_the_spool(steward_server, account, sdk_sandbox, monkeypatch):
    monkeypatch.setenv("STEWARD_MODE", "offline")
    steward.configure(url=steward_server.url, token=account.token)
    with steward.start_run(project=account.project, experiment="offline", capture=False) as run:
        run.log_params({"a": 1})
        for step in range(2500):
            run.log_metric("m", step, step=step)
        run.log_text("hello", "notes/hello.txt")
    assert not Run.objects.filter(pk=run.id).exists()

    monkeypatch.delenv("STEWARD_MODE")
    report = steward.sync()
    assert report.ok and report.sent >= 4
    assert_each_step_once(run.id, "m", range(2500))
    with steward.Client() as client:
        assert client.get_run(run.id).status == "FINISHED"
        assert client.list_artifacts(run.id, "notes")[0]["path"] == "notes/hello.txt"


def test_spooled_batches_survive_a_crash(steward_server, account, sdk_sandbox):
    """A process that spooled its batches and then died hard: sync still stores each point once."""
    script = textwrap.dedent(
        f"""
        import os, steward
        run = steward.start_run(project={account.project!r}, experiment="crash", capture=False)
        for step in range(1500):
            run.log_metric("loss", step, step=step)
        run.flush()
        print(run.id, flush=True)
        os._exit(9)  # no atexit, no run end
        """
    )
    proxy = Proxy(steward_server.port, start_down=True)
    env = {**os.environ, **account.env(proxy.url)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=120, check=False)
    assert done.returncode == 9, done.stderr
    run_id = done.stdout.strip()

    proxy.up()
    try:
        assert run_cli("sync", env=account.env(proxy.url)).returncode == 0
    finally:
        proxy.close()
    assert_each_step_once(run_id, "loss", range(1500))
    assert Run.objects.get(pk=run_id).status == "RUNNING"  # it never said it ended


def test_a_batch_retried_after_a_lost_response_is_stored_once(steward_server, account):
    proxy = Proxy(steward_server.port, drop_batches=1)
    try:
        steward.configure(url=proxy.url, token=account.token)
        with steward.start_run(project=account.project, experiment="lost", capture=False) as run:
            for step in range(3000):
                run.log_metric("loss", step, step=step)
    finally:
        proxy.close()
    assert proxy.dropped == 1
    # the retry carried the same Idempotency-Key as the request whose answer was lost
    assert len(proxy.batch_keys) >= 2 and proxy.batch_keys[0] == proxy.batch_keys[1]
    assert_each_step_once(run.id, "loss", range(3000))


@pytest.mark.parametrize(("tail", "status"), [("", "FINISHED"), ("raise RuntimeError('boom')", "FAILED")])
def test_interpreter_exit_flushes_and_ends_an_open_run(steward_server, account, tail, status):
    script = textwrap.dedent(
        f"""
        import steward
        run = steward.start_run(project={account.project!r}, experiment="atexit", capture=False)
        for step in range(1234):
            run.log_metric("m", step)
        print(run.id, flush=True)
        {tail}
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **account.env(steward_server.url)}, check=False)
    run_id = done.stdout.strip()
    assert_each_step_once(run_id, "m", range(1234))
    row = Run.objects.get(pk=run_id)
    assert row.status == status
    if status == "FAILED":
        assert "RuntimeError: boom" in row.error
