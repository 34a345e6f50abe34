import datetime as dt
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Role
from core import jobs
from core.models import Job, JobStatus
from experiments import services
from experiments.tasks import run_summary_task
from mlplatform.celery import app as celery_app
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_celery(settings):
    """Tasks run in this process when queued, so a test sees the whole path without a broker."""
    # The Celery app reads Django's settings live, so the settings fixture also undoes this.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert celery_app.conf.task_always_eager


@pytest.fixture
def run(project):
    run = RunFactory(experiment__project=project)
    services.metrics_log(run=run, points=[
        services.MetricPoint(key="loss", value=value, step=step, timestamp=1_700_000_000_000 + step)
        for step, value in enumerate([0.9, 0.5, 0.7, 0.3])
    ] + [services.MetricPoint(key="acc", value=0.8, step=3, timestamp=1_700_000_000_003)])
    return run


@pytest.fixture
def job(run):
    return jobs.job_create(kind="run_summary", project=run.project, params={"run_id": str(run.pk)})


def test_summary_job_is_queued_through_the_api_and_runs_on_commit(editor, run, eager_celery,
                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = editor.post(f"/api/v1/runs/{run.pk}/summary/")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert len(callbacks) == 1

    polled = editor.get(f"/api/v1/jobs/{response.json()['id']}/").json()
    assert polled["status"] == "succeeded"
    assert polled["progress"] == 100
    assert polled["attempts"] == 1
    assert polled["result"]["metrics"]["loss"] == {
        "count": 4, "min": 0.3, "max": 0.9, "last": 0.3, "last_step": 3}
    assert polled["result"]["metrics"]["acc"]["last"] == 0.8


def test_job_is_not_queued_when_the_transaction_rolls_back(run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            jobs.job_create(kind="run_summary", project=run.project, params={"run_id": str(run.pk)})
            raise RuntimeError("the request failed after creating the job")
    # No message for a row that was never committed.
    assert callbacks == []
    assert not Job.objects.exists()


def test_unknown_job_kind_is_refused():
    with pytest.raises(ValidationError) as info:
        jobs.job_create(kind="no-such-kind")
    assert "kind" in info.value.message_dict
    assert not Job.objects.exists()


def test_member_reads_a_job_and_outsider_gets_404(member_client, outsider, job):
    viewer = member_client(Role.VIEWER)
    response = viewer.get(f"/api/v1/jobs/{job.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert (body["kind"], body["status"], body["progress"]) == ("run_summary", "queued", 0)
    assert body["project"] == job.project.slug

    assert outsider.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert outsider.get(f"/api/v1/projects/{job.project.slug}/jobs/").status_code == 404
    assert viewer.get(f"/api/v1/jobs/{job.pk + 1000}/").status_code == 404


def test_project_job_list_shows_its_jobs(editor, job):
    listed = editor.get(f"/api/v1/projects/{job.project.slug}/jobs/").json()["jobs"]
    assert [j["id"] for j in listed] == [job.pk]


def test_cancelling_a_queued_job_stops_it_before_it_starts(editor, job, run):
    response = editor.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"

    run_summary_task(job.pk)  # the message still arrives at a worker later

    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.result is None
    assert job.attempts == 0
    assert job.started_at is None


def test_cancelling_twice_is_400_naming_status(editor, job):
    assert editor.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 200
    again = editor.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert again.status_code == 400
    assert "status" in again.json()["error"]["fields"]


def test_cancelling_a_finished_job_is_400_and_keeps_its_result(editor, job):
    run_summary_task(job.pk)
    response = editor.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result is not None


def test_viewer_cannot_cancel(member_client, job):
    assert member_client(Role.VIEWER).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_a_running_job_stops_at_its_next_progress_report(job):
    claimed = jobs.job_claim(job_id=job.pk)
    cancelled = jobs.job_cancel(job=claimed)
    assert cancelled.status == JobStatus.RUNNING and cancelled.cancel_requested

    def work(job):
        jobs.job_progress(job=job, progress=50)
        raise AssertionError("not reached: the progress report sees the cancel")

    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)  # let job_run claim it again
    jobs.job_run(job_id=job.pk, work=work)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None


def test_job_claim_is_a_guarded_update(job):
    first = jobs.job_claim(job_id=job.pk)
    second = jobs.job_claim(job_id=job.pk)
    assert first is not None and first.status == JobStatus.RUNNING
    assert second is None
    job.refresh_from_db()
    assert job.attempts == 1
    assert job.heartbeat_at is not None


def test_task_run_twice_has_one_effect(job):
    run_summary_task(job.pk)
    job.refresh_from_db()
    first = (job.status, job.result, job.attempts, job.finished_at)
    run_summary_task(job.pk)
    job.refresh_from_db()
    assert (job.status, job.result, job.attempts, job.finished_at) == first
    assert first[0] == JobStatus.SUCCEEDED and first[2] == 1


def test_summary_of_a_deleted_run_fails_with_the_reason(job, run):
    run.delete()
    run_summary_task(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "no longer exists" in job.error
    assert job.message == "Invalid input"


def test_progress_is_clamped_and_sets_a_heartbeat(job):
    claimed = jobs.job_claim(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    jobs.job_progress(job=claimed, progress=250, message="almost", log="line\n")
    job.refresh_from_db()
    assert job.progress == 100
    assert job.message == "almost" and job.log == "line\n"
    assert timezone.now() - job.heartbeat_at < dt.timedelta(minutes=1)


def _stale_running(job, *, attempts: int, cancel_requested: bool = False) -> None:
    old = timezone.now() - dt.timedelta(hours=1)
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=attempts, started_at=old, heartbeat_at=old,
        cancel_requested=cancel_requested,
    )


def test_reaper_requeues_a_stale_job_once(job, django_capture_on_commit_callbacks):
    _stale_running(job, attempts=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert jobs.jobs_reap_stale() == {"requeued": 1, "failed": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert "stopped responding" in job.message
    assert len(callbacks) == 1  # its task is sent again


def test_reaper_fails_a_job_that_used_its_attempts(job):
    _stale_running(job, attempts=jobs.MAX_ATTEMPTS)
    assert jobs.jobs_reap_stale() == {"requeued": 0, "failed": 1}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "probably killed" in job.error
    assert job.finished_at is not None


def test_reaper_leaves_jobs_with_a_fresh_heartbeat_alone(job):
    jobs.job_claim(job_id=job.pk)
    assert jobs.jobs_reap_stale() == {"requeued": 0, "failed": 0}
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING


def test_reaper_does_not_requeue_a_job_someone_cancelled(job):
    _stale_running(job, attempts=1, cancel_requested=True)
    assert jobs.jobs_reap_stale() == {"requeued": 0, "failed": 1}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


# --- attempts: a re-queued attempt that lives on writes nothing -----------------------------------


def _requeue_and_claim_again(job: Job) -> Job:
    """What the reaper and another worker do to a job whose heartbeat looked stale."""
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    assert jobs.jobs_reap_stale() == {"requeued": 1, "failed": 0}
    second = jobs.job_claim(job_id=job.pk)
    assert second is not None and second.attempts == job.attempts + 1
    return second


def test_an_attempt_the_reaper_gave_up_on_stops_at_its_next_progress_report(job):
    reached = []

    def work(first):
        second = _requeue_and_claim_again(first)
        reached.append(second)
        jobs.job_progress(job=first, progress=60, message="first attempt, still alive")
        raise AssertionError("not reached: the report sees that attempt 2 runs the job")

    jobs.job_run(job_id=job.pk, work=work)
    job.refresh_from_db()
    # Attempt 2 runs it: attempt 1 neither reported progress nor marked it cancelled or ended.
    assert (job.status, job.attempts, job.progress, job.message) == (JobStatus.RUNNING, 2, 0, "Started")
    second = reached[0]
    jobs.job_progress(job=second, progress=50, message="second attempt")
    assert jobs.job_succeed(job=second, result={"by": 2})
    job.refresh_from_db()
    assert (job.status, job.result) == (JobStatus.SUCCEEDED, {"by": 2})


def test_an_old_attempt_cannot_end_the_job_or_store_its_result(job, run):
    first = jobs.job_claim(job_id=job.pk)
    second = _requeue_and_claim_again(first)
    assert not jobs.job_succeed(job=first, result={"by": 1})
    assert not jobs.job_fail(job=first, error="attempt 1 failed")
    assert not jobs.job_mark_cancelled(job=first)
    with pytest.raises(jobs.JobSuperseded), transaction.atomic():
        jobs.job_guard(job=first)
        raise AssertionError("not reached: attempt 1 may not store results")
    with transaction.atomic():
        jobs.job_guard(job=second)  # the current attempt may
    job.refresh_from_db()
    assert (job.status, job.attempts, job.result, job.error) == (JobStatus.RUNNING, 2, None, "")


# --- the heartbeat runs through every phase -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_beats_while_its_work_reports_nothing(project, settings):
    settings.JOB_STALE_AFTER_SECONDS = 4  # a beat a second
    run = RunFactory(experiment__project=project)
    job = jobs.job_create(kind="run_summary", project=project, params={"run_id": str(run.pk)})
    seen = []

    def work(claimed):
        started = Job.objects.get(pk=claimed.pk).heartbeat_at
        for _ in range(30):  # a long phase with no progress report, up to 3 s
            time.sleep(0.1)
            seen.append(Job.objects.get(pk=claimed.pk).heartbeat_at)
            if len(set(seen)) >= 3:
                break
        assert jobs.jobs_reap_stale(now=started + dt.timedelta(seconds=5)) == {"requeued": 0, "failed": 0}
        return {}

    jobs.job_run(job_id=job.pk, work=work)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 1
    assert len(set(seen)) >= 3, "the heartbeat did not move while the work ran"
    assert not any(t.name == f"heartbeat-job-{job.pk}" for t in threading.enumerate())
