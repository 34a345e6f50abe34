"""A drift alert on a monitor with the trigger on retrains from the champion's spec; the new
version goes to review, and no alias moves."""

from __future__ import annotations

import pytest

from core.models import Job
from monitoring import services, signals
from monitoring.models import Alert, Retraining
from registry import prediction_log
from registry import services as registry_services
from registry.models import ModelAlias, ModelVersion
from tests.monitoring.conftest import credit_frame
from tests.monitoring.test_monitors import SHIFT, run_report

pytestmark = pytest.mark.django_db


@pytest.fixture
def champion(served, editor):
    # "champion" is protected: it moves only through an approved promotion (as here, in setup).
    registry_services._alias_move(
        model=served.model, alias="champion", version=served, actor=editor.user, via="approval:test:1"
    )
    return served


def test_a_drift_alert_retrains_into_a_new_version_and_the_champion_stays(editor, project, champion):
    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "champion", "retrain_on_alert": True},
        format="json",
    ).json()
    for i in range(0, 600, 100):
        editor.post(
            f"/api/v1/serve/{project.slug}/scorer/champion/predict",
            {
                "records": credit_frame(rows=600, seed=12, shift=SHIFT)
                .iloc[i : i + 100][["income", "age", "debt", "region"]]
                .to_dict("records")
            },
            format="json",
        )
    prediction_log.prediction_log_flush()
    report = run_report(editor, body["id"])
    assert report["dataset_drift"] is True
    retraining = Retraining.objects.get()
    assert retraining.alert == Alert.objects.get(kind="drift") and retraining.champion == champion
    job = Job.objects.get(pk=retraining.job_id)
    assert job.kind == "retraining" and job.status == "queued"

    services.retraining_compute(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    retraining.refresh_from_db()
    new = retraining.version
    assert new.version == 2 and new.model == champion.model
    assert new.status == "pending_checks" and new.check_job_id  # the registry's checks come next
    assert new.training_dataset_version_id == champion.training_dataset_version_id
    # Nothing moved: the champion is still version 1 until a reviewer approves version 2.
    assert ModelAlias.objects.get(model=champion.model, name="champion").version_id == champion.pk
    assert ModelVersion.objects.filter(model=champion.model).count() == 2


def test_the_signal_is_sent_when_the_version_commits(
    editor, project, champion, django_capture_on_commit_callbacks
):
    received = []
    signals.retrained_version_created.connect(
        lambda sender, version, monitor, **kw: received.append(version.pk),
        weak=False,
        dispatch_uid="test-retrained",
    )
    try:
        from monitoring.models import Monitor

        monitor = Monitor.objects.create(
            project=project,
            model=champion.model,
            alias="champion",
            retrain_on_alert=True,
            created_by=editor.user,
        )
        services.retraining_start(monitor=monitor, alert=None, user=editor.user)
        job = Retraining.objects.get().job
        with django_capture_on_commit_callbacks(execute=True):
            services.retraining_compute(job_id=job.pk)
        version = Retraining.objects.get().version
        assert received == [version.pk]
    finally:
        signals.retrained_version_created.disconnect(dispatch_uid="test-retrained")


def test_a_version_logged_from_a_script_gets_an_alert_that_retraining_needs_a_spec(editor, project, champion):
    from monitoring.models import Monitor
    from training.models import TrainingRun

    TrainingRun.objects.filter(run=champion.run).delete()
    monitor = Monitor.objects.create(
        project=project, model=champion.model, alias="champion", retrain_on_alert=True
    )
    alert = services.retraining_start(monitor=monitor, alert=None)
    assert alert.kind == "retraining" and "needs a training spec" in alert.message
    assert not Retraining.objects.exists()


def test_a_spec_that_no_longer_holds_opens_a_retraining_alert_instead(editor, project, champion):
    from training.models import TrainingRun

    TrainingRun.objects.filter(run=champion.run).update(resolved_features=["income", "shoe size"])
    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "champion", "retrain_on_alert": True},
        format="json",
    ).json()
    for i in range(0, 600, 100):
        editor.post(
            f"/api/v1/serve/{project.slug}/scorer/champion/predict",
            {
                "records": credit_frame(rows=600, seed=12, shift=SHIFT)
                .iloc[i : i + 100][["income", "age", "debt", "region"]]
                .to_dict("records")
            },
            format="json",
        )
    prediction_log.prediction_log_flush()
    assert run_report(editor, body["id"])["dataset_drift"] is True
    assert not Retraining.objects.exists()
    alert = Alert.objects.get(kind="retraining")
    assert "could not start" in alert.message and "shoe size" in alert.message
    assert Alert.objects.filter(kind="drift", status="open").exists()
