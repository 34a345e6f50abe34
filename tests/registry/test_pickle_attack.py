"""The attack from the security review, end to end, as a user with no role anywhere.

Any user may create a project and so own it. Before, an owner could trust a
pickle's sha256, and the check job (worker) and scikit-learn serving (web)
then unpickled it: code of the user's choosing ran as the server. Here the
whole sequence is tried, with pickle loading off (the default) and on, and
ends in refusals while the marker file the pickle would write never appears.
"""

import pickle

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import services as account_services
from core.models import Job
from registry.models import ModelVersion, TrustedModelHash
from tests.factories import ProjectFactory, UserFactory
from tests.registry.test_safe_loading import Booby
from tests.workers import wait_for_job


def _stranger() -> APIClient:
    user = UserFactory()  # a member of no project, not staff
    _, raw = account_services.api_token_create(user=user, name="attack")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.user = user
    return client


def _upload_and_register(client, marker) -> dict:
    assert client.post("/api/v1/projects/", {"slug": "mine"}, format="json").status_code == 201
    run = client.post("/api/v1/projects/mine/runs/", {"experiment": "x"}, format="json")
    assert run.status_code == 201, run.content
    run_id = run.json()["id"]
    stored = client.generic("PUT", f"/api/v1/runs/{run_id}/artifacts/model/model.pkl",
                            pickle.dumps(Booby(marker)), content_type="application/octet-stream")
    assert stored.status_code == 201, stored.content
    registered = client.post("/api/v1/projects/mine/models/evil/versions/", {"run_id": run_id}, format="json")
    assert registered.status_code == 201, registered.content  # registration itself neither fails nor hangs
    return registered.json()


def _refused_everywhere(client, version: dict, marker) -> None:
    """Every way to get the file trusted or loaded: each refused, the marker never written."""
    trust = client.post("/api/v1/projects/mine/trusted-hashes/", {"sha256": version["sha256"]}, format="json")
    assert trust.status_code == 403, trust.content
    served = client.post("/api/v1/serve/mine/evil/1/predict", {"records": [{"x": 1}]}, format="json")
    assert served.status_code == 409, served.content
    scored = client.post("/api/v1/projects/mine/models/evil/versions/1/batch-score/",
                         {"dataset_version_id": 1}, format="json")
    assert scored.status_code in (404, 409), scored.content
    page = Client()
    page.force_login(client.user)
    assert page.post("/p/mine/models/evil/v/1/trust/", {"sha256": version["sha256"]}).status_code == 403
    # Nor in somebody else's project, which the attacker cannot even see.
    other = ProjectFactory()
    assert client.post(f"/api/v1/projects/{other.slug}/trusted-hashes/", {"sha256": version["sha256"]},
                       format="json").status_code == 404
    assert not TrustedModelHash.objects.exists()
    assert not marker.exists()


def _expected_end(version: dict, job: Job, allow_pickles: bool) -> None:
    stored = ModelVersion.objects.get(model__name="evil", version=version["version"])
    if allow_pickles:
        assert (job.status, job.result) == ("succeeded", {"status": "untrusted"})
        assert stored.status == "pending_checks"
        assert "until an instance administrator trusts" in stored.status_message
    else:
        assert job.status == "failed"
        assert stored.status == "failed"
        assert "off on this server" in stored.status_message and "run.log_model" in stored.status_message


@pytest.mark.django_db
@pytest.mark.parametrize("allow_pickles", [False, True], ids=["pickles-off", "pickles-on"])
def test_an_outsider_cannot_make_the_server_unpickle_a_file(tmp_path, settings, allow_pickles,
                                                            django_capture_on_commit_callbacks):
    settings.ALLOW_PICKLE_MODELS = allow_pickles
    settings.CELERY_TASK_ALWAYS_EAGER = True
    marker = tmp_path / "pwned"
    client = _stranger()
    with django_capture_on_commit_callbacks(execute=True):
        version = _upload_and_register(client, marker)
        _refused_everywhere(client, version, marker)  # before its checks ran
    # The check job ran (eagerly, in this process) when the block ended.
    job = Job.objects.get(pk=version["check_job_id"])
    _expected_end(version, job, allow_pickles)
    with django_capture_on_commit_callbacks(execute=True):
        _refused_everywhere(client, version, marker)  # and after
    assert not marker.exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("allow_pickles", [False, True], ids=["pickles-off", "pickles-on"])
def test_an_outsider_cannot_make_a_real_worker_unpickle_a_file(tmp_path, settings, monkeypatch, queue,
                                                               start_worker, allow_pickles):
    settings.ALLOW_PICKLE_MODELS = allow_pickles
    monkeypatch.setenv("ALLOW_PICKLE_MODELS", "true" if allow_pickles else "false")  # the worker's setting
    worker = start_worker(queue)
    marker = tmp_path / "pwned"
    client = _stranger()
    version = _upload_and_register(client, marker)
    _refused_everywhere(client, version, marker)
    job, _ = wait_for_job(version["check_job_id"], lambda j: j.is_final, worker, "finished")
    assert "model_version_check_task" in worker.log()
    _expected_end(version, job, allow_pickles)
    _refused_everywhere(client, version, marker)
    assert not marker.exists()
