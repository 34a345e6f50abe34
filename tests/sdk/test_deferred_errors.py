"""A batch the server refused is raised in the user's thread, whatever the SDK's own threads do meanwhile."""

from __future__ import annotations

import logging
import threading
import time

import pytest
import steward
from steward._connection import DeferredErrors

from experiments.models import Metric, Run

pytestmark = pytest.mark.live


def _in_thread(name: str, errors: DeferredErrors) -> BaseException | None:
    raised: list[BaseException] = []

    def call() -> None:
        try:
            errors.raise_first()
        except BaseException as exc:  # noqa: BLE001 - what the thread would have died of
            raised.append(exc)

    thread = threading.Thread(target=call, name=name)
    thread.start()
    thread.join()
    return raised[0] if raised else None


@pytest.mark.parametrize("thread_name", ["steward-system-metrics", "steward-sender", "steward-spool-sync"])
def test_a_background_thread_neither_raises_nor_clears_a_refusal(thread_name):
    errors = DeferredErrors()
    refusal = steward.ConflictError(409, "conflict", "Param 'lr' is already logged as '0.5'.", {})
    errors.add(refusal)
    assert _in_thread(thread_name, errors) is None
    assert errors.pending == [refusal]
    with pytest.raises(steward.ConflictError) as caught:
        errors.raise_first()  # the user's thread
    assert caught.value is refusal
    errors.raise_first()  # raised once
    assert _in_thread("a-thread-of-the-users", DeferredErrors()) is None


def test_a_refusal_reaches_end_run_while_system_metrics_keep_sampling(steward_server, account, caplog):
    pytest.importorskip("psutil")
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    other = steward.Client()
    run = steward.start_run(experiment="deferred-end", system_metrics=0.02, capture=False)
    other.log_batch(run.id, params={"lr": "0.5"})
    with caplog.at_level(logging.ERROR, logger="steward"):
        run.log_param("lr", 0.1)  # the server has another value: its batch is refused
        deadline = time.monotonic() + 20
        while "refused logged data" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "refused logged data" in caplog.text
    sampled = Metric.objects.filter(run_id=run.id, key="system/cpu_percent").count
    before = sampled()
    deadline = time.monotonic() + 20
    while sampled() <= before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sampled() > before + 2  # the sampler ran (and sent) after the refusal
    # The user logs nothing more: ending the run is where the refusal surfaces, once.
    with pytest.raises(steward.ConflictError, match="Param 'lr' is already logged as '0.5'"):
        steward.end_run()
    other.close()
    assert Run.objects.get(pk=run.id).status == "FINISHED"
    assert steward.active_run() is None
    assert not any(t.name == "steward-system-metrics" for t in threading.enumerate())
