import pickle

import pytest

from accounts.models import Role
from registry import loading, services
from registry.models import ModelFormat, TrustedModelHash, VersionStatus
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


class Booby:
    """Unpickling this opens (creates) a file: what a hostile model file would do."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture
def trap(tmp_path):
    return tmp_path / "pwned.txt"


@pytest.fixture
def booby_version(project, run, editor, trap, cancer_data):
    store_model(run, None, file_name="model.pkl", data=pickle.dumps(Booby(trap)),
                example=cancer_data[0].head(5))
    response = editor.post(f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/",
                           {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["model_format"] == "pickle"
    assert body["trusted"] is None
    return body


def test_a_malicious_pickle_is_stored_but_never_loaded(project, editor, trap, booby_version, cancer_data):
    from registry.models import ModelVersion

    version = ModelVersion.objects.get(version=booby_version["version"])
    # Checked (as the worker would): stays pending, never unpickled.
    services.model_version_check(job_id=booby_version["check_job_id"])
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_CHECKS
    assert "not be loaded until a project owner trusts" in version.status_message
    assert not trap.exists()

    # Scored: refused, never unpickled.
    record = cancer_data[0].iloc[0].to_dict()
    response = editor.post(f"/api/v1/serve/{project.slug}/credit-scorer/1/predict", {"records": [record]},
                           format="json")
    assert response.status_code == 409
    assert "pending checks" in response.json()["error"]["message"]
    assert not trap.exists()

    # Explained (and anything else that wants the estimator goes through the same loader): refused.
    with pytest.raises(loading.ModelLoadRefused, match="not trusted"):
        loading.estimator_load(version)
    assert not trap.exists()

    # Trusting some other file does not help this one.
    TrustedModelHash.objects.create(project=project, sha256="0" * 64)
    with pytest.raises(loading.ModelLoadRefused):
        loading.estimator_load(version)
    assert not trap.exists()


def test_only_owners_can_trust_a_hash(project, editor, booby_version):
    url = f"/api/v1/projects/{project.slug}/trusted-hashes/"
    response = editor.post(url, {"sha256": booby_version["sha256"]}, format="json")
    assert response.status_code == 403
    assert not TrustedModelHash.objects.exists()


def test_a_bad_hash_is_refused(project, owner):
    url = f"/api/v1/projects/{project.slug}/trusted-hashes/"
    response = owner.post(url, {"sha256": "abc"}, format="json")
    assert response.status_code == 400
    assert "sha256" in response.json()["error"]["fields"]


def test_a_trusted_pickle_loads_and_serves(project, run, owner, diabetes_ridge):
    ridge, X = diabetes_ridge
    store_model(run, None, folder="legacy", file_name="model.joblib", data=_joblib_bytes(ridge),
                example=X.head(30))
    version = register(project=project, run=run, user=owner.user, path="legacy", name="legacy")
    assert version.model_format == ModelFormat.JOBLIB
    assert version.status == VersionStatus.PENDING_CHECKS

    response = owner.post(f"/api/v1/projects/{project.slug}/trusted-hashes/",
                          {"sha256": version.sha256, "note": "trained by us in 2023"}, format="json")
    assert response.status_code == 201
    trust = TrustedModelHash.objects.get()
    assert (trust.trusted_by, trust.sha256) == (owner.user, version.sha256)
    # Trusting queued a fresh check; run it as the worker would.
    version.refresh_from_db()
    services.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    assert version.status == VersionStatus.READY
    detail = owner.get(f"/api/v1/projects/{project.slug}/models/legacy/versions/1/").json()
    assert detail["trusted"]["by"] == owner.user.username

    response = owner.post(f"/api/v1/serve/{project.slug}/legacy/1/predict",
                          {"records": [X.iloc[0].to_dict()]}, format="json")
    assert response.status_code == 200
    assert response.json()["predictions"][0] == pytest.approx(ridge.predict(X.head(1))[0], rel=1e-6)


def _joblib_bytes(obj) -> bytes:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def test_viewers_see_versions_but_cannot_trust(project, member_client, booby_version):
    viewer = member_client(Role.VIEWER)
    assert viewer.get(f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/1/").status_code == 200
    response = viewer.post(f"/api/v1/projects/{project.slug}/trusted-hashes/",
                           {"sha256": booby_version["sha256"]}, format="json")
    assert response.status_code == 403
