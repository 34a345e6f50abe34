import pickle

import pytest

from accounts.models import Role
from registry import loading, registration
from registry.models import ModelFormat, ModelVersion, TrustedModelHash, VersionStatus
from registry.signals import pickle_hash_trusted
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


def trust_url(project):
    return f"/api/v1/projects/{project.slug}/trusted-hashes/"


def _joblib_bytes(obj) -> bytes:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


# --- ALLOW_PICKLE_MODELS off (the default) --------------------------------------------------


def test_with_pickles_off_a_pickle_version_fails_its_checks_saying_how_to_log_skops(
        project, editor, trap, booby_version, cancer_data, settings):
    assert settings.ALLOW_PICKLE_MODELS is False  # the default
    version = ModelVersion.objects.get(version=booby_version["version"])
    registration.model_version_check(job_id=booby_version["check_job_id"])
    version.refresh_from_db()
    assert version.status == VersionStatus.FAILED
    assert "off on this server" in version.status_message
    assert 'run.log_model(model, registered_model="credit-scorer"' in version.status_message
    assert not trap.exists()
    detail = editor.get(f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/1/").json()
    assert detail["status"] == "failed" and "skops" in detail["status_message"]
    job = editor.get(f"/api/v1/jobs/{booby_version['check_job_id']}/").json()
    assert job["status"] == "failed"

    # Served: refused, never unpickled.
    record = cancer_data[0].iloc[0].to_dict()
    response = editor.post(f"/api/v1/serve/{project.slug}/credit-scorer/1/predict", {"records": [record]},
                           format="json")
    assert response.status_code == 409
    assert not trap.exists()


def test_with_pickles_off_even_a_staff_trusted_hash_never_loads(project, admin, trap, booby_version):
    version = ModelVersion.objects.get(version=booby_version["version"])
    # A trust an administrator recorded while pickles were on (or by hand) changes nothing.
    TrustedModelHash.objects.create(project=project, sha256=version.sha256, trusted_by=admin.user)
    with pytest.raises(loading.ModelLoadRefused, match="off on this server"):
        loading.estimator_load(version)
    # Even a version marked ready (say, checked while pickles were on) is not served.
    ModelVersion.objects.filter(pk=version.pk).update(status="ready", runtime="sklearn")
    response = admin.post(f"/api/v1/serve/{project.slug}/credit-scorer/1/predict",
                          {"records": [{"x": 1}]}, format="json")
    assert response.status_code == 409
    assert "off on this server" in response.json()["error"]["message"]
    assert not trap.exists()


def test_with_pickles_off_nobody_can_trust_a_hash(project, admin, owner, booby_version):
    for client in (admin, owner):
        response = client.post(trust_url(project), {"sha256": booby_version["sha256"]}, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "pickle_models_off"
        assert "ALLOW_PICKLE_MODELS" in response.json()["error"]["message"]
    assert not TrustedModelHash.objects.exists()


# --- ALLOW_PICKLE_MODELS on -----------------------------------------------------------------


def test_with_pickles_on_an_untrusted_pickle_stays_pending_and_never_loads(
        project, editor, trap, booby_version, cancer_data, pickles_on):
    version = ModelVersion.objects.get(version=booby_version["version"])
    registration.model_version_check(job_id=booby_version["check_job_id"])
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_CHECKS
    assert "until an instance administrator trusts" in version.status_message
    assert not trap.exists()

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


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR, Role.REVIEWER, Role.OWNER])
def test_with_pickles_on_no_project_role_can_trust_a_hash(project, member_client, booby_version, role,
                                                          pickles_on):
    client = member_client(role)
    response = client.post(trust_url(project), {"sha256": booby_version["sha256"]}, format="json")
    assert response.status_code == 403
    assert "instance administrator" in response.json()["error"]["message"]
    assert not TrustedModelHash.objects.exists()


def test_a_trust_an_owner_recorded_before_does_not_count(project, owner, trap, booby_version, pickles_on):
    version = ModelVersion.objects.get(version=booby_version["version"])
    # As a row from before trusting became an administrator's decision.
    TrustedModelHash.objects.create(project=project, sha256=version.sha256, trusted_by=owner.user)
    with pytest.raises(loading.ModelLoadRefused, match="not trusted"):
        loading.estimator_load(version)
    registration.model_version_check(job_id=booby_version["check_job_id"])
    version.refresh_from_db()
    assert version.status == VersionStatus.PENDING_CHECKS
    assert owner.get(trust_url(project)).json() == {"trusted": []}
    assert not trap.exists()


def test_a_bad_hash_is_refused(project, admin, pickles_on):
    response = admin.post(trust_url(project), {"sha256": "abc"}, format="json")
    assert response.status_code == 400
    assert "sha256" in response.json()["error"]["fields"]


def test_a_staff_trusted_pickle_loads_and_serves(project, run, owner, admin, diabetes_ridge, pickles_on):
    ridge, X = diabetes_ridge
    store_model(run, None, folder="legacy", file_name="model.joblib", data=_joblib_bytes(ridge),
                example=X.head(30))
    version = register(project=project, run=run, user=owner.user, path="legacy", name="legacy")
    assert version.model_format == ModelFormat.JOBLIB
    assert version.status == VersionStatus.PENDING_CHECKS

    heard = []

    def receiver(sender, trust, user, **kwargs):
        heard.append((trust.sha256, trust.project_id, user))

    pickle_hash_trusted.connect(receiver)
    try:
        response = admin.post(trust_url(project), {"sha256": version.sha256, "note": "trained by us in 2023"},
                              format="json")
        again = admin.post(trust_url(project), {"sha256": version.sha256}, format="json")
    finally:
        pickle_hash_trusted.disconnect(receiver)
    assert response.status_code == 201, response.json()
    assert response.json()["by"] == admin.user.username
    assert again.status_code == 201 and again.json()["at"] == response.json()["at"]
    trust = TrustedModelHash.objects.get()
    assert (trust.trusted_by, trust.sha256) == (admin.user, version.sha256)
    assert trust.note == "trained by us in 2023"
    assert trust.trusted_at is not None
    # The audit seam hears the decision once, with who made it.
    assert heard == [(version.sha256, project.pk, admin.user)]

    # Trusting queued a fresh check; run it as the worker would.
    version.refresh_from_db()
    registration.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    assert version.status == VersionStatus.READY
    detail = owner.get(f"/api/v1/projects/{project.slug}/models/legacy/versions/1/").json()
    assert detail["trusted"]["by"] == admin.user.username
    assert owner.get(trust_url(project)).json()["trusted"][0]["by"] == admin.user.username

    response = owner.post(f"/api/v1/serve/{project.slug}/legacy/1/predict",
                          {"records": [X.iloc[0].to_dict()]}, format="json")
    assert response.status_code == 200
    assert response.json()["predictions"][0] == pytest.approx(ridge.predict(X.head(1))[0], rel=1e-6)


def test_an_administrator_replaces_a_trust_that_does_not_count(project, owner, admin, booby_version,
                                                                pickles_on):
    TrustedModelHash.objects.create(project=project, sha256=booby_version["sha256"], trusted_by=owner.user,
                                    note="mine")
    response = admin.post(trust_url(project), {"sha256": booby_version["sha256"], "note": "reviewed"},
                          format="json")
    assert response.status_code == 201
    trust = TrustedModelHash.objects.get()
    assert (trust.trusted_by, trust.note) == (admin.user, "reviewed")


def test_a_trust_lapses_when_its_administrator_is_no_longer_staff(project, run, owner, admin, diabetes_ridge,
                                                                   pickles_on):
    ridge, X = diabetes_ridge
    store_model(run, None, folder="legacy", file_name="model.pkl", data=pickle.dumps(ridge),
                example=X.head(5))
    version = register(project=project, run=run, user=owner.user, path="legacy", name="legacy", check=False)
    assert admin.post(trust_url(project), {"sha256": version.sha256}, format="json").status_code == 201
    assert loading.estimator_load(version).predict(X.head(1)) == pytest.approx(ridge.predict(X.head(1)))
    admin.user.is_staff = False
    admin.user.save()
    with pytest.raises(loading.ModelLoadRefused, match="not trusted"):
        loading.estimator_load(version)


def test_viewers_see_versions_but_cannot_trust(project, member_client, booby_version, pickles_on):
    viewer = member_client(Role.VIEWER)
    assert viewer.get(f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/1/").status_code == 200
    response = viewer.post(trust_url(project), {"sha256": booby_version["sha256"]}, format="json")
    assert response.status_code == 403


def test_outsiders_cannot_see_the_trust_list(project, outsider, booby_version, pickles_on):
    assert outsider.get(trust_url(project)).status_code == 404
    assert outsider.post(trust_url(project), {"sha256": booby_version["sha256"]}, format="json").status_code \
        == 404
