import io
from pathlib import Path

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
        assert {"dataset", "model", "model_family"} <= set(run.tags.values_list("key", flat=True))
        assert run.params.filter(key="seed").exists()
        steps = Metric.objects.filter(run=run, key="val_accuracy").count()
        assert steps >= 40  # one point per epoch or boosting iteration
        final = run.latest_metrics.get(key="val_accuracy").value
        assert 0.8 < final <= 1.0  # real training on real data learns something


def test_seed_demo_needs_an_existing_owner():
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        seed("nobody")
    assert not Project.objects.filter(slug="demo").exists()


EXAMPLE_PARAMS = {"model", "loss", "alpha", "learning_rate", "epochs", "test_size", "n_train", "n_val",
                  "n_test"}
EXAMPLE_METRICS = {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "test_accuracy", "test_f1",
                   "test_roc_auc"}


def test_seeded_runs_log_what_the_example_script_logs_so_the_leaderboard_ranks_them_all():
    from registry.models import ModelAlias, ModelVersion

    UserFactory(username="admin")
    out = seed("admin")
    assert "breast-cancer-classifier" in out
    example = (Path(__file__).resolve().parents[2] / "examples" / "train_sklearn.py").read_text()
    for key in EXAMPLE_PARAMS | EXAMPLE_METRICS:
        assert f'"{key}"' in example, key  # the example logs each of these
    for run in Run.objects.filter(experiment__name="breast-cancer-sgd"):
        assert EXAMPLE_PARAMS <= set(run.params.values_list("key", flat=True))
        assert set(run.latest_metrics.values_list("key", flat=True)) == EXAMPLE_METRICS
        assert run.name.startswith("sgd alpha=")  # as the example names its runs
        assert run.artifacts.filter(path="model/model.skops").exists()
    # Values are stored in the one text every path uses.
    assert Param.objects.filter(run__name="sgd alpha=0.0001 lr=0.01", key="alpha").get().value == "0.0001"

    versions = ModelVersion.objects.filter(model__name="breast-cancer-classifier").order_by("version")
    assert [v.status for v in versions] == ["ready", "ready"]
    staging = ModelAlias.objects.get(model__name="breast-cancer-classifier", name="staging")
    assert staging.version == versions[1]
    assert versions[1].example  # the try-it form starts from the input example
    # Seeding again keeps the model as it is.
    assert "already there" in seed("admin")
    assert ModelVersion.objects.count() == 2
