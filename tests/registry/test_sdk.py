"""The registry through the SDK against a real server (gunicorn, jobs run eagerly there)."""

from __future__ import annotations

import time
import uuid

import pytest
import steward

from registry.models import PredictionLog
from tests.sdk.conftest import account, sdk_sandbox, steward_server  # noqa: F401 - fixtures

pytestmark = pytest.mark.live


def test_log_model_register_alias_and_predict(steward_server, account, forest, cancer_data):  # noqa: F811
    X, _ = cancer_data
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    with steward.start_run(experiment="models") as run:
        version = run.log_model(forest, registered_model="credit-scorer", input_example=X.head(100))
    assert (version.version, version.status, version.runtime) == (1, "ready", "onnx")
    assert [c["name"] for c in version.signature["columns"]] == list(X.columns)

    client = steward.Client(url=steward_server.url, token=account.token)
    again = client.register_model(run.id, "credit-scorer", artifact_path="model")
    assert again.version == 2 and again.ready

    client.set_alias(account.project, "credit-scorer", "challenger", 1)
    assert client.get_model_version(account.project, "credit-scorer", "challenger").version == 1
    rows = X.head(3)
    out = client.predict(account.project, "credit-scorer", "challenger", rows)
    assert out["predictions"] == forest.predict(rows).tolist()
    assert out["model_version"] == 1 and len(out["probabilities"]) == 3
    assert uuid.UUID(out["request_id"])

    client.set_alias(account.project, "credit-scorer", "challenger", 2)
    assert client.predict(account.project, "credit-scorer", "challenger", rows)["model_version"] == 2

    with pytest.raises(steward.PermissionDeniedError, match="protected"):
        client.set_alias(account.project, "credit-scorer", "champion", 1)
    with pytest.raises(steward.NotFoundError):
        client.predict(account.project, "credit-scorer", "nope", rows)
    bad = rows.to_dict("records")
    bad[0]["mean radius"] = "big"
    with pytest.raises(steward.InvalidRequestError, match="mean radius"):
        client.predict(account.project, "credit-scorer", 1, bad)

    # The server writes the prediction log from a background thread, off the request path.
    deadline = time.monotonic() + 20
    while not PredictionLog.objects.filter(request_id=out["request_id"], rows=3).exists():
        assert time.monotonic() < deadline, "the prediction log was never written"
        time.sleep(0.1)
    client.close()


def test_a_run_from_another_project_cannot_be_registered(steward_server, account, forest):  # noqa: F811
    from tests.sdk.conftest import make_account

    other = make_account()
    steward.configure(url=steward_server.url, token=other.token, project=other.project)
    with steward.start_run(experiment="theirs") as run:
        run.log_model(forest)
    client = steward.Client(url=steward_server.url, token=account.token)
    with pytest.raises(steward.NotFoundError):
        client.register_model(run.id, "stolen", project=account.project)
    client.close()
