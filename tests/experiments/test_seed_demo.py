import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Membership, Project, Role
from experiments.models import Experiment, Metric, Param, Run, RunStatus, Tag
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def seed(owner: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", owner=owner, stdout=out)
    return out.getvalue()


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Project, Experiment, Run, Param, Metric, Tag))


def test_seed_demo_makes_runs_with_learning_curves_and_is_idempotent():
    owner = UserFactory(username="admin")
    assert "6 run(s) added" in seed("admin")
    first = counts()

    assert "0 run(s) added, 6 already present" in seed("admin")
    assert counts() == first

    project = Project.objects.get(slug="demo")
    assert Membership.objects.get(project=project, user=owner).role == Role.OWNER
    assert set(Experiment.objects.filter(project=project).values_list("name", flat=True)) == {
        "breast-cancer-sgd", "wine-gradient-boosting"}
    for run in Run.objects.filter(project=project):
        assert run.status == RunStatus.FINISHED and run.end_time is not None
        assert run.notes and run.git_commit and run.python_version
        assert {"dataset", "model"} <= set(run.tags.values_list("key", flat=True))
        assert run.params.filter(key="seed").exists()
        steps = Metric.objects.filter(run=run, key="val_accuracy").count()
        assert steps >= 40  # one point per epoch or boosting iteration
        final = run.latest_metrics.get(key="val_accuracy").value
        assert 0.8 < final <= 1.0  # real training on real data learns something


def test_seed_demo_needs_an_existing_owner():
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        seed("nobody")
    assert not Project.objects.filter(slug="demo").exists()
