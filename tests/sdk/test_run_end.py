"""A run ends once: a second end, from any thread, waits for the first and changes nothing."""

from __future__ import annotations

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
