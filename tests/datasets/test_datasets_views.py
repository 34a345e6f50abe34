import io

import pytest
from django.test import Client

from accounts.models import Role
from core.models import Job, JobStatus
from datasets.models import DatasetVersion
from tests.datasets import test_datasets as ds
from tests.datasets.test_datasets import credit_frame, csv_bytes
from tests.factories import MembershipFactory, UserFactory
from training.models import Sweep

eager = ds.eager


@pytest.fixture
def browser(project):
    def make(role: Role) -> Client:
        user = UserFactory()
        MembershipFactory(project=project, user=user, role=role)
        client = Client()
        client.force_login(user)
        return client

    return make


def _upload(client, project, eager, df=None, name="credit"):
    data = csv_bytes(df if df is not None else credit_frame())
    with eager():
        response = client.post(f"/p/{project.slug}/datasets/",
                               {"name": name, "file": io.BytesIO(data), "delimiter": "", "encoding": ""})
    return response


def test_upload_form_creates_a_version_and_shows_its_page(browser, project, eager):
    editor = browser(Role.EDITOR)
    response = _upload(editor, project, eager)
    version = DatasetVersion.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/v/{version.pk}/"
    page = editor.get(response["Location"]).content.decode()
    assert "credit" in page and "400" in page and version.sha256 in page
    assert 'id="profile-data"' in page  # the profile job ran and its charts have data
    assert 'data-col-chart="income"' in page
    listing = editor.get(f"/p/{project.slug}/datasets/").content.decode()
    assert f"/datasets/v/{version.pk}/" in listing


def test_upload_form_shows_a_bad_file_error_without_storing(browser, project, eager):
    editor = browser(Role.EDITOR)
    with eager():
        response = editor.post(f"/p/{project.slug}/datasets/",
                               {"name": "bad", "file": io.BytesIO(b"a;b;c\n1;2;3\n"), "delimiter": ","})
    assert response.status_code == 200
    assert "delimited by &#x27;;&#x27;" in response.content.decode()
    assert not DatasetVersion.objects.exists()


def test_viewer_sees_no_upload_form_no_pii_and_cannot_post(browser, project, eager):
    editor = browser(Role.EDITOR)
    _upload(editor, project, eager)
    version = DatasetVersion.objects.get()
    editor.post(f"/datasets/v/{version.pk}/", {"action": "columns", "role:customer_id": "id",
                                               "pii:customer_id": "on", "role:income": "feature"})
    version.refresh_from_db()
    assert version.column("customer_id")["pii"] is True and version.column("customer_id")["role"] == "id"
    viewer = browser(Role.VIEWER)
    assert "Upload a version" not in viewer.get(f"/p/{project.slug}/datasets/").content.decode()
    page = viewer.get(f"/datasets/v/{version.pk}/").content.decode()
    assert "PII columns are hidden: customer_id" in page
    assert viewer.post(f"/datasets/v/{version.pk}/", {"action": "profile"}).status_code == 403
    assert viewer.post(f"/p/{project.slug}/datasets/", {"name": "x"}).status_code == 403
    outsider = Client()
    outsider.force_login(UserFactory())
    assert outsider.get(f"/datasets/v/{version.pk}/").status_code == 404


def test_training_form_submits_a_job_whose_page_shows_progress_log_and_run(browser, project, eager):
    editor = browser(Role.EDITOR)
    _upload(editor, project, eager)
    version = DatasetVersion.objects.get()
    form = editor.get(f"/p/{project.slug}/train/?dataset_version={version.pk}").content.decode()
    assert "RandomForestClassifier" in form and 'name="target"' in form
    with eager():
        response = editor.post(f"/p/{project.slug}/train/", {
            "experiment": "ui", "dataset_version": version.pk, "target": "default", "task": "classification",
            "estimator": "LogisticRegression", "params": '{"C": 0.5}', "test_size": 0.3, "stratify": "on",
            "seed": 3, "sensitive_features": ["sex"], "metrics": ["accuracy", "f1"],
        })
    job = Job.objects.get(kind="training")
    assert response.status_code == 302 and response["Location"] == f"/training/jobs/{job.pk}/"
    assert job.status == JobStatus.SUCCEEDED, job.error
    page = editor.get(response["Location"]).content.decode()
    assert "Open the run" in page and "test_accuracy=" in page and "&quot;C&quot;: 0.5" in page
    panel = editor.get(f"/runs/{job.result['run_id']}/datasets-panel/").content.decode()
    assert f"/datasets/v/{version.pk}/" in panel and "Re-run" in panel
    assert "plots/confusion_matrix.json" in panel
    version_page = editor.get(f"/datasets/v/{version.pk}/").content.decode()
    assert f"/runs/{job.result['run_id']}/" in version_page  # lineage on the dataset side


def test_training_form_shows_spec_errors(browser, project, eager):
    editor = browser(Role.EDITOR)
    _upload(editor, project, eager)
    version = DatasetVersion.objects.get()
    response = editor.post(f"/p/{project.slug}/train/", {
        "experiment": "ui", "dataset_version": version.pk, "target": "default", "task": "classification",
        "estimator": "LogisticRegression", "params": '{"C": "lots"}', "test_size": 0.3, "seed": 3})
    assert response.status_code == 200
    assert "params.C" in response.content.decode()
    assert not Job.objects.filter(kind="training").exists()


def test_sweep_from_the_form_shows_a_leaderboard_with_the_best_run(browser, project, eager):
    editor = browser(Role.EDITOR)
    _upload(editor, project, eager)
    version = DatasetVersion.objects.get()
    with eager():
        response = editor.post(f"/p/{project.slug}/train/", {
            "experiment": "ui", "dataset_version": version.pk, "target": "default", "task": "classification",
            "estimator": "DecisionTreeClassifier", "params": "", "test_size": 0.3, "seed": 3,
            "stratify": "on", "sweep_space": '{"max_depth": [1, 2, 4]}', "sweep_strategy": "grid",
            "sweep_parallelism": 1})
    sweep = Sweep.objects.get()
    assert response["Location"] == f"/sweeps/{sweep.pk}/"
    page = editor.get(response["Location"]).content.decode()
    assert page.count('class="best"') == 1 and "3 succeeded" in page
    assert f"/sweeps/{sweep.pk}/" in editor.get(f"/p/{project.slug}/sweeps/").content.decode()


def test_training_job_page_drops_its_cancel_button_when_the_job_ends(browser, project):
    editor = browser(Role.EDITOR)
    job = Job.objects.create(kind="training", project=project, status=JobStatus.RUNNING,
                             params={"experiment": "ui", "spec": {}})
    cancel_url = f"/training/jobs/{job.pk}/cancel/"
    assert cancel_url in editor.get(f"/training/jobs/{job.pk}/").content.decode()

    editor.post(cancel_url)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED)  # as the worker leaves it
    panel = editor.get(f"/training/jobs/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    # The polled panel's last refresh empties the header's cancel slot out of band.
    assert '<div id="training-job-cancel" hx-swap-oob="true"></div>' in panel
    assert cancel_url not in editor.get(f"/training/jobs/{job.pk}/").content.decode()
