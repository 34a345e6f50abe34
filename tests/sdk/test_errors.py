"""A 4xx from the server surfaces as an exception with the server's message, never a silent drop."""

from __future__ import annotations

import json
import uuid

import pytest
import steward

from accounts.models import Membership, Role
from experiments.models import Metric, Run
from tests.sdk.conftest import make_account

pytestmark = pytest.mark.live


def test_a_missing_project_is_created_with_the_caller_as_owner(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token)
    slug = f"fresh-{uuid.uuid4().hex[:8]}"
    with steward.start_run(project=slug, experiment="x", capture=False) as run:
        run.log_metric("m", 1)
    membership = Membership.objects.get(project__slug=slug)
    assert (membership.user, membership.role) == (account.user, Role.OWNER)
    assert Run.objects.get(pk=run.id).project.slug == slug


def test_a_project_that_cannot_be_created_is_named_in_the_error(steward_server, account):
    someone_elses = make_account().project
    steward.configure(url=steward_server.url, token=account.token)
    refused = f"Project '{someone_elses}' does not exist for you"
    with pytest.raises(steward.NotFoundError, match=refused) as caught:
        steward.start_run(project=someone_elses, experiment="x", capture=False)
    assert "not a member" in caught.value.fields["project"]
    with pytest.raises(steward.NotFoundError, match="Project 'Not A Slug' does not exist .*slug"):
        steward.start_run(project="Not A Slug", experiment="x", capture=False)
    assert steward.active_run() is None
    assert not Membership.objects.filter(user=account.user).exclude(project__slug=account.project).exists()


def test_bad_token_raises_authentication_error(steward_server, account):
    with steward.Client(url=steward_server.url, token="stw_not-a-token") as client:
        with pytest.raises(steward.AuthenticationError, match="Invalid, expired or revoked token"):
            client.me()


def test_bad_values_raise_before_anything_is_buffered(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token)
    with steward.start_run(project=account.project, experiment="bad", capture=False) as run:
        with pytest.raises(steward.InvalidInputError, match="may only contain"):
            run.log_metric("bad key!", 1.0)
        with pytest.raises(steward.InvalidInputError, match="may only contain"):
            run.log_metric("loss\n", 1.0)  # "$" once let a final newline through
        with pytest.raises(steward.InvalidInputError, match="must be a number"):
            run.log_metric("loss", "high")
        with pytest.raises(steward.InvalidInputError, match="parent path"):
            run.set_tag("../etc", "x")
        run.log_param("lr", 0.1)
        with pytest.raises(steward.ConflictError, match="already logged"):
            run.log_param("lr", 0.2)


def test_param_conflict_found_by_the_server_raises_at_flush(steward_server, account, sdk_sandbox):
    steward.configure(url=steward_server.url, token=account.token)
    other = steward.Client()
    with pytest.raises(steward.ConflictError, match="Param 'lr' is already logged as '0.5'") as caught:
        with steward.start_run(project=account.project, experiment="conflict", capture=False) as run:
            other.log_batch(run.id, params={"lr": "0.5"})
            run.log_param("lr", 0.1)
            run.log_metric("loss", 1.0)
            run.flush()
    assert caught.value.status == 409
    other.close()
    # the refused param is kept on disk with the reason; the metrics of its batch still arrive
    assert Metric.objects.filter(run_id=run.id, key="loss").count() == 1
    rejected = list(sdk_sandbox.rglob("rejected/*/*.batch.json"))
    assert len(rejected) == 1
    assert json.loads(rejected[0].read_text())["body"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert "already logged" in rejected[0].with_name(rejected[0].name + ".error").read_text()


def test_server_side_validation_errors_name_the_field(steward_server, account):
    with steward.Client(url=steward_server.url, token=account.token, project=account.project) as client:
        run = client.create_run(None, "limits")
        too_many = [{"key": "m", "value": 1.0, "step": i} for i in range(10_001)]
        with pytest.raises(steward.InvalidRequestError, match="At most 10000") as caught:
            client.log_batch(run.id, metrics=too_many)
        assert "metrics" in caught.value.fields
        with pytest.raises(steward.NotFoundError):
            client.get_run("00000000-0000-0000-0000-000000000000")
        with pytest.raises(steward.NotFoundError):
            client.download_artifact(run.id, "missing.bin", "/tmp/never-written")
        with pytest.raises(steward.InvalidRequestError):
            client.search_runs(filter="metrics.acc >>> 1")


def test_log_batch_with_the_same_key_stores_once(steward_server, account):
    with steward.Client(url=steward_server.url, token=account.token, project=account.project) as client:
        run = client.create_run(None, "idem")
        points = [{"key": "m", "value": float(i), "step": i, "timestamp": 1} for i in range(100)]
        first = client.log_batch(run.id, metrics=points, idempotency_key="k-1")
        second = client.log_batch(run.id, metrics=points, idempotency_key="k-1")
        assert first == second == {"params": 0, "metrics": 100, "tags": 0}
    assert Metric.objects.filter(run_id=run.id).count() == 100
