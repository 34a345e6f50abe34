"""The monitoring loop through the SDK against a real server (gunicorn; jobs run eagerly there)."""

from __future__ import annotations

import time
import uuid

import pytest
import steward

from registry.models import PredictionLog
from tests.monitoring.conftest import FEATURES, credit_frame, spec
from tests.monitoring.test_monitors import SHIFT
from tests.sdk.conftest import account, sdk_sandbox, steward_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.live


def test_monitor_labels_and_report_through_the_sdk(steward_server, account):  # noqa: F811
    client = steward.Client(url=steward_server.url, token=account.token)
    data = client.create_dataset_version(account.project, "credit", credit_frame())
    job = client.wait_job(client.submit_training_job(account.project, "credit", spec(data.id)).id)
    assert job.status == "succeeded", job.error
    version = client.register_model(job.result["run_id"], "scorer", project=account.project)
    deadline = time.monotonic() + 60
    while not version.ready and time.monotonic() < deadline:
        time.sleep(0.5)
        version = client.get_model_version(account.project, "scorer", version.version)
    client.set_alias(account.project, "scorer", "live", version.version)

    monitor = client.create_monitor(
        account.project, "scorer", "live", schedule=60, window={"predictions": 5000},
        retrain_data="reference_plus_labelled",
    )
    assert monitor.alias == "live" and monitor.schedule_minutes == 60 and monitor.window_predictions == 5000
    assert monitor.retrain_data == "reference_plus_labelled"

    frame = credit_frame(rows=600, seed=12, shift=SHIFT)
    ids = []
    for i in range(0, 600, 100):
        rid = str(uuid.uuid4())
        answer = client.predict(
            account.project, "scorer", "live", frame.iloc[i : i + 100][FEATURES], request_id=rid
        )
        assert answer["request_id"] == uuid.UUID(rid).hex
        ids.append((rid, answer["predictions"]))
    labels = [
        {"request_id": rid, "row": row, "label": int(p)} for rid, preds in ids for row, p in enumerate(preds)
    ]
    assert client.log_labels(monitor.id, labels) == {"labels": 600}

    deadline = time.monotonic() + 30  # the server writes the prediction log off the request path
    while PredictionLog.objects.filter(request_id__in=[uuid.UUID(r) for r, _ in ids]).count() < 6:
        assert time.monotonic() < deadline, "the prediction log was never written"
        time.sleep(0.2)

    job = client.wait_for_job(client.run_monitor(monitor.id).id)
    assert job["status"] == "succeeded", job["error"]
    report = client.get_monitor_report(job["result"]["report_id"])
    assert report["dataset_drift"] is True
    assert sorted(f["feature"] for f in report["features"] if f["drifted"]) == ["income", "region"]
    assert set(report["features"][0]) >= {
        "feature",
        "kind",
        "test",
        "statistic",
        "p_value",
        "psi",
        "wasserstein",
        "drifted",
    }
    assert report["performance"]["labelled"] == 600 and report["performance"]["metrics"]["accuracy"] == 1.0
    assert "prediction" in report and "data_quality" in report

    logged = client.log_predictions(
        monitor.id,
        [{"inputs": frame.iloc[0][FEATURES].to_dict(), "prediction": 1, "request_id": str(uuid.uuid4())}],
    )
    assert logged["predictions"] == 1
    client.close()
