"""`make run`'s first start: a served demo model with a monitor that already shows a drift alert."""

import io

import pytest
from django.core.management import call_command

from accounts.models import Role
from monitoring.models import Alert, Label, Monitor
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _serving(settings, artifact_root):
    settings.PREDICTION_LOG_BACKGROUND = False


def test_the_demo_monitor_shows_a_drift_alert_and_is_made_once():
    owner = UserFactory(username="admin")
    project = ProjectFactory(slug="demo")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    out = io.StringIO()
    call_command("monitoring_demo", owner="admin", stdout=out)
    assert "dataset drift found" in out.getvalue()
    monitor = Monitor.objects.get()
    assert (monitor.model.name, monitor.alias, monitor.schedule_minutes) == ("credit-demo", "live", 1)
    report = monitor.reports.get()
    assert report.dataset_drift and {"income", "region"} <= {
        f["feature"] for f in report.features if f["drifted"]
    }
    assert report.performance["labelled"] == 600
    assert Alert.objects.filter(monitor=monitor, kind="drift", status="open").exists()
    labels = Label.objects.count()

    again = io.StringIO()
    call_command("monitoring_demo", owner="admin", stdout=again)
    assert "already there" in again.getvalue()
    assert Monitor.objects.count() == 1 and Label.objects.count() == labels
