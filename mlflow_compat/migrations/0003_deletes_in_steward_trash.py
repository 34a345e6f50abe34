"""MLflow's deletes go to Steward's trash (the run's and the experiment's ``lifecycle``): the side
table and column this app kept for them are moved there first, then dropped. Nothing is lost: a
run or experiment that was deleted through MLflow is in the trash afterwards, restorable from
Steward's pages, and purged like any other."""

from django.db import migrations

DELETED, ACTIVE = "deleted", "active"


def side_state_to_trash(apps, schema_editor):
    Run = apps.get_model("experiments", "Run")
    Experiment = apps.get_model("experiments", "Experiment")
    DeletedRun = apps.get_model("mlflow_compat", "DeletedRun")
    ExperimentState = apps.get_model("mlflow_compat", "ExperimentState")
    # Runs deleted on their own keep their own time, so restoring their experiment later leaves
    # them in the trash, as Steward's trash does.
    for run_id, deleted_at in DeletedRun.objects.values_list("run_id", "deleted_at").iterator():
        Run.objects.filter(pk=run_id, lifecycle=ACTIVE).update(lifecycle=DELETED, deleted_at=deleted_at)
    states = ExperimentState.objects.filter(deleted_at__isnull=False).values_list("experiment_id", "deleted_at")
    for experiment_id, deleted_at in states.iterator():
        if Experiment.objects.filter(pk=experiment_id, lifecycle=ACTIVE).update(
                lifecycle=DELETED, deleted_at=deleted_at):
            Run.objects.filter(experiment_id=experiment_id, lifecycle=ACTIVE).update(
                lifecycle=DELETED, deleted_at=deleted_at)


def trash_to_side_state(apps, schema_editor):
    Run = apps.get_model("experiments", "Run")
    Experiment = apps.get_model("experiments", "Experiment")
    DeletedRun = apps.get_model("mlflow_compat", "DeletedRun")
    ExperimentState = apps.get_model("mlflow_compat", "ExperimentState")
    for run_id, deleted_at in Run.objects.filter(lifecycle=DELETED).values_list("pk", "deleted_at").iterator():
        DeletedRun.objects.update_or_create(run_id=run_id, defaults={"deleted_at": deleted_at})
    deleted = Experiment.objects.filter(lifecycle=DELETED).values_list("pk", "deleted_at")
    for experiment_id, deleted_at in deleted.iterator():
        ExperimentState.objects.update_or_create(experiment_id=experiment_id,
                                                 defaults={"deleted_at": deleted_at})


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0011_run_experiment_lifecycle'),
        ('mlflow_compat', '0002_version_tags'),
    ]

    operations = [
        migrations.RunPython(side_state_to_trash, trash_to_side_state),
        migrations.RemoveField(
            model_name='experimentstate',
            name='deleted_at',
        ),
        migrations.DeleteModel(
            name='DeletedRun',
        ),
    ]
