"""Stored Idempotency-Key answers are pruned after IDEMPOTENCY_KEEP_DAYS by a beat task."""

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from core.models import IdempotentRequest
from experiments import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_id(editor, project):
    response = editor.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "e"}, format="json")
    return response.json()["id"]


def batch(client, run_id, key, value):
    body = {"metrics": [{"key": "m", "value": value, "step": 0}]}
    return client.post(f"/api/v1/runs/{run_id}/batch/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_answers_older_than_the_keep_days_are_pruned_and_recent_ones_still_answer(editor, run_id, settings):
    settings.IDEMPOTENCY_KEEP_DAYS = 7
    assert batch(editor, run_id, "old", 1.0).status_code == 201
    assert batch(editor, run_id, "recent", 2.0).status_code == 201
    IdempotentRequest.objects.filter(key="old").update(created_at=timezone.now() - dt.timedelta(days=8))
    IdempotentRequest.objects.filter(key="recent").update(created_at=timezone.now() - dt.timedelta(days=6))

    assert tasks.idempotent_requests_prune_task() == 1
    assert tasks.idempotent_requests_prune_task() == 0  # run twice: one effect
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["recent"]
    # The recent key still answers a retry with its first answer instead of storing it again.
    again = batch(editor, run_id, "recent", 2.0)
    assert again.status_code == 201
    assert IdempotentRequest.objects.filter(key="recent").count() == 1


def test_the_prune_runs_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["idempotent-requests-prune"]
    assert entry["task"] == "experiments.tasks.idempotent_requests_prune_task"
    assert tasks.idempotent_requests_prune_task.name == entry["task"]
