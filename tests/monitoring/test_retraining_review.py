"""A retrained version goes to review: governance opens a promotion request for the monitor's
protected alias, and the alias stays where it is until a reviewer approves."""

import pytest

from governance.models import PromotionRequest, PromotionStatus
from monitoring import services
from monitoring.models import Monitor, Retraining
from registry.models import ModelAlias
from tests.monitoring.test_retraining import champion  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_a_retrained_version_gets_a_promotion_request_and_the_alias_waits(
    editor, project, champion, django_capture_on_commit_callbacks  # noqa: F811
):
    monitor = Monitor.objects.create(project=project, model=champion.model, alias="champion",
                                     retrain_on_alert=True, created_by=editor.user)
    services.retraining_start(monitor=monitor, alert=None, user=editor.user)
    job = Retraining.objects.get().job
    with django_capture_on_commit_callbacks(execute=True):
        services.retraining_compute(job_id=job.pk)
    version = Retraining.objects.get().version

    request = PromotionRequest.objects.get(version=version)
    assert request.alias == "champion" and request.requester == editor.user
    assert request.status in (PromotionStatus.CHECKS_RUNNING, PromotionStatus.BLOCKED)
    assert f"monitor #{monitor.pk}" in request.justification
    assert ModelAlias.objects.get(model=champion.model, name="champion").version_id == champion.pk


def test_an_unprotected_alias_gets_no_request(editor, project, champion,  # noqa: F811
                                              django_capture_on_commit_callbacks):
    from registry import services as registry_services

    registry_services.alias_set(model=champion.model, alias="staging", version=champion, user=editor.user)
    monitor = Monitor.objects.create(project=project, model=champion.model, alias="staging",
                                     retrain_on_alert=True, created_by=editor.user)
    services.retraining_start(monitor=monitor, alert=None, user=editor.user)
    with django_capture_on_commit_callbacks(execute=True):
        services.retraining_compute(job_id=Retraining.objects.get().job_id)
    assert not PromotionRequest.objects.exists()
