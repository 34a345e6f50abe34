"""A run ends once: a second end, from any thread, waits for the first and changes nothing."""

from __future__ import annotations

import collections
import json
import threading
import time

import pytest
import steward

from tests.sdk.conftest import Proxy

pytestmark = pytest.mark.live


def test_a_second_end_from_another_thread_waits_for_the_first_and_keeps_its_status(
    steward_server, account, sdk_sandbox
):
    proxy = Proxy(steward_server.port)
    try:
        steward.configure(url=proxy.url, token=account.token)
        run = steward.start_run(project=account.project, experiment="two-ends", capture=False)
        run.log_metric("loss", 0.5)
        # With the server gone, the first end spends the retry budget (1.5 s) on the last batch.
        proxy.down()
        first = threading.Thread(target=run.end, args=("FINISHED",), name="ends-the-run")
        first.start()
        time.sleep(0.3)
        run.end("KILLED")
        # Returned only once the run has ended, and with the first end's status.
        assert run.status == "FINISHED"
        assert steward.active_run() is None
        first.join(30)
        assert not first.is_alive()
    finally:
        proxy.close()
    updates = list(sdk_sandbox.rglob("*.update.json"))
    assert len(updates) == 1, "the run's end is recorded once"
    assert json.loads(updates[0].read_text())["body"]["status"] == "FINISHED"


class _HeldDeque(collections.deque):
    """The run's metric queue, whose next append waits for a gate: a logging thread caught between
    the run's "not ended" check and its append while another thread ends the run."""

    def __init__(self, gate: threading.Event):
        super().__init__()
        self.gate = gate
        self.hold = False

    def append(self, item):
        if self.hold:
            self.hold = False
            assert self.gate.wait(30)
        super().append(item)


def test_a_point_logged_while_another_thread_ends_the_run_is_stored_or_refused(
    steward_server, account, sdk_sandbox
):
    steward.configure(url=steward_server.url, token=account.token)
    run = steward.start_run(project=account.project, experiment="late-points", capture=False)
    gate = threading.Event()
    queue = _HeldDeque(gate)
    run._metrics = run._sender.metrics = queue
    run.log_metric("loss", 0.5, step=0)
    queue.hold = True
    outcome = {}

    def late():
        try:
            run.log_metric("loss", 0.25, step=1)
            outcome["logged"] = True
        except steward.StewardError as exc:
            outcome["refused"] = str(exc)

    logger = threading.Thread(target=late)
    logger.start()
    time.sleep(0.2)  # the logger has passed the check and waits at the append
    run.end("FINISHED")  # drains and ends while the point is not queued yet
    gate.set()
    logger.join(30)
    assert "ended while this was logged" in outcome.get("refused", ""), outcome
    history = steward.Client().get_metric_history(run.id, "loss")
    assert [p["step"] for p in history] == [0]
    assert len(queue) == 0, "the refused point does not stay queued"
