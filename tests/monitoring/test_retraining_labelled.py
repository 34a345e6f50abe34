"""A monitor that retrains on "the reference plus recent labelled predictions": the retraining
writes them as the next version of the reference's dataset and trains on that version."""

from __future__ import annotations

import numpy as np
import pytest

from core.models import Job
from datasets import services as datasets
from datasets.models import DatasetVersion
from governance.models import PromotionRequest
from monitoring import services
from monitoring.models import Monitor, Retraining
from registry.models import ModelAlias, ModelVersion
from tests.monitoring.conftest import FEATURES, credit_frame, send_traffic
from tests.monitoring.test_monitors import SHIFT, run_report
from tests.monitoring.test_retraining import champion  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

LABELLED = 250


def _monitor(editor, project, **fields) -> dict:
    response = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "champion", "retrain_on_alert": True,
         "retrain_data": "reference_plus_labelled", **fields},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _label(editor, monitor_id, answers, rows: int) -> list[tuple[str, int, int]]:
    """Labels for the first ``rows`` served rows: the opposite of what the model answered."""
    labels = []
    for answer in answers:
        for row, prediction in enumerate(answer["predictions"]):
            if len(labels) < rows:
                labels.append((answer["request_id"], row, 1 - int(prediction)))
    response = editor.post(
        f"/api/v1/monitors/{monitor_id}/labels/",
        [{"request_id": r, "row": i, "label": y} for r, i, y in labels],
        format="json",
    )
    assert response.status_code == 201, response.json()
    return labels


def test_a_drift_alert_retrains_on_the_reference_plus_the_labelled_predictions(
    editor, project, champion, django_capture_on_commit_callbacks  # noqa: F811
):
    monitor = _monitor(editor, project)
    assert monitor["retrain_data"] == "reference_plus_labelled"
    served = credit_frame(rows=600, seed=12, shift=SHIFT)
    answers = send_traffic(editor, project, served, batch=100)
    labels = _label(editor, monitor["id"], answers, LABELLED)

    report = run_report(editor, monitor["id"])
    assert report["dataset_drift"] is True
    retraining = Retraining.objects.get()
    job = Job.objects.get(pk=retraining.job_id)
    assert job.params["retrain_data"] == "reference_plus_labelled"

    with django_capture_on_commit_callbacks(execute=True):
        services.retraining_compute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    retraining.refresh_from_db()

    # The new dataset version: the reference's 1500 rows, then the 250 labelled predictions.
    reference = champion.training_dataset_version
    written = retraining.dataset_version
    assert written.dataset_id == reference.dataset_id and written.version == reference.version + 1
    assert written.row_count == reference.row_count + LABELLED == 1500 + LABELLED
    assert written.profile_job.status == "succeeded"
    frame = datasets.version_read_frame(written)
    assert frame["default"].dtype == np.int64
    added = frame.iloc[reference.row_count:].reset_index(drop=True)
    assert added["default"].tolist() == [y for _, _, y in labels]
    expected = served.iloc[:LABELLED][FEATURES].reset_index(drop=True)
    assert np.allclose(added["income"], expected["income"])
    assert added["region"].tolist() == expected["region"].tolist()

    # The new model version was trained on it, records it as its training data, and waits for review.
    version = retraining.version
    assert version.version == 2 and version.training_dataset_version_id == written.pk
    assert job.params["spec"]["dataset_version"] == written.pk
    assert PromotionRequest.objects.filter(version=version, alias="champion").exists()
    assert ModelAlias.objects.get(model=champion.model, name="champion").version_id == champion.pk
    assert ModelVersion.objects.filter(model=champion.model).count() == 2

    # The task delivered again does nothing more.
    services.retraining_compute(job_id=job.pk)
    assert ModelVersion.objects.filter(model=champion.model).count() == 2
    assert DatasetVersion.objects.filter(dataset=reference.dataset).count() == 2


def test_writing_the_same_data_again_stores_it_once_and_keeps_roles_and_pii_flags(
    editor, project, champion  # noqa: F811
):
    monitor = _monitor(editor, project)
    answers = send_traffic(editor, project, credit_frame(rows=200, seed=3), batch=100)
    _label(editor, monitor["id"], answers, 50)
    reference = champion.training_dataset_version
    datasets.dataset_columns_update(
        version=reference, changes={"debt": {"pii": True}, "default": {"role": "target"}}
    )

    first = services.retraining_dataset_write(
        monitor=Monitor.objects.get(pk=monitor["id"]), target="default", user=editor.user
    )
    again = services.retraining_dataset_write(
        monitor=Monitor.objects.get(pk=monitor["id"]), target="default", user=editor.user
    )
    assert first.pk == again.pk and first.row_count == 1500 + 50
    assert first.column("debt")["pii"] is True and first.column("income")["pii"] is False
    assert first.column("default")["role"] == "target"


def test_without_labels_the_job_fails_and_writes_nothing(editor, project, champion):  # noqa: F811
    monitor = Monitor.objects.get(pk=_monitor(editor, project)["id"])
    send_traffic(editor, project, credit_frame(rows=200, seed=3), batch=100)
    services.retraining_start(monitor=monitor, alert=None, user=editor.user)
    job = Retraining.objects.get().job
    services.retraining_compute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "No labelled predictions" in job.error
    assert DatasetVersion.objects.count() == 1
    assert ModelVersion.objects.filter(model=champion.model).count() == 1


def test_a_reference_without_the_target_is_refused_before_a_job_starts(
    editor, project, champion  # noqa: F811
):
    from tests.datasets.test_datasets import csv_bytes, upload

    features_only = upload(editor, project.slug, "inputs", csv_bytes(credit_frame()[FEATURES])).json()
    monitor = Monitor.objects.get(
        pk=_monitor(editor, project, reference_dataset_version=features_only["id"])["id"]
    )
    with pytest.raises(services.ValidationError) as caught:
        services.retraining_start(monitor=monitor, alert=None, user=editor.user)
    assert "retrain_data" in caught.value.message_dict and "default" in str(caught.value)
    assert not Retraining.objects.exists()


def test_the_choice_is_checked_and_can_be_changed(editor, project, champion):  # noqa: F811
    response = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "champion", "retrain_data": "everything"},
        format="json",
    )
    assert response.status_code == 400 and "retrain_data" in response.json()["error"]["fields"]
    assert not Monitor.objects.exists()
    monitor = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/", {"model": "scorer", "alias": "champion"}, format="json"
    ).json()
    assert monitor["retrain_data"] == "newest_dataset_version"
    changed = editor.patch(
        f"/api/v1/monitors/{monitor['id']}/", {"retrain_data": "reference_plus_labelled"}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["retrain_data"] == "reference_plus_labelled"
    bad = editor.patch(f"/api/v1/monitors/{monitor['id']}/", {"retrain_data": 3}, format="json")
    assert bad.status_code == 400 and "retrain_data" in bad.json()["error"]["fields"]
