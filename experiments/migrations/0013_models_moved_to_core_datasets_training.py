"""The models that moved to core, datasets and training leave experiments' state. No table is
touched (they keep their names); the content types follow the models to their new apps.
"""

from django.db import migrations

MOVED = {
    "core": ["idempotentrequest", "job"],
    "datasets": ["dataset", "datasetversion", "validationrule", "rundataset"],
    "training": ["sweep", "sweeptrial", "trainingrun"],
}


def content_types_follow(apps, schema_editor, *, forward=True):
    """Permissions and admin history point at content types: relabel them rather than orphan them."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for app, models in MOVED.items():
        old, new = ("experiments", app) if forward else (app, "experiments")
        for model in models:
            # A content type made for the new label already (by a post_migrate run) yields to the old one.
            if ContentType.objects.using(db).filter(app_label=old, model=model).exists():
                ContentType.objects.using(db).filter(app_label=new, model=model).delete()
                ContentType.objects.using(db).filter(app_label=old, model=model).update(app_label=new)


def content_types_back(apps, schema_editor):
    content_types_follow(apps, schema_editor, forward=False)


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('experiments', '0012_experiment_name_500'),
        ('core', '0001_initial'),
        ('datasets', '0001_initial'),
        ('governance', '0005_models_moved_to_core'),
        ('monitoring', '0004_models_moved_to_core_datasets'),
        ('registry', '0005_models_moved_to_core_datasets'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(
                model_name='datasetversion',
                name='dataset',
            ),
            migrations.RemoveField(
                model_name='validationrule',
                name='dataset',
            ),
            migrations.RemoveField(
                model_name='datasetversion',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='datasetversion',
                name='profile_job',
            ),
            migrations.RemoveField(
                model_name='datasetversion',
                name='validation_job',
            ),
            migrations.RemoveField(
                model_name='rundataset',
                name='dataset_version',
            ),
            migrations.RemoveField(
                model_name='idempotentrequest',
                name='user',
            ),
            migrations.RemoveField(
                model_name='job',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='job',
                name='project',
            ),
            migrations.RemoveField(
                model_name='trainingrun',
                name='job',
            ),
            migrations.RemoveField(
                model_name='sweeptrial',
                name='job',
            ),
            migrations.RemoveField(
                model_name='rundataset',
                name='run',
            ),
            migrations.RemoveField(
                model_name='sweep',
                name='best_run',
            ),
            migrations.RemoveField(
                model_name='sweep',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='sweep',
                name='experiment',
            ),
            migrations.RemoveField(
                model_name='sweep',
                name='project',
            ),
            migrations.RemoveField(
                model_name='sweeptrial',
                name='sweep',
            ),
            migrations.RemoveField(
                model_name='trainingrun',
                name='sweep',
            ),
            migrations.RemoveField(
                model_name='trainingrun',
                name='rerun_of',
            ),
            migrations.RemoveField(
                model_name='trainingrun',
                name='run',
            ),
            migrations.RemoveField(
                model_name='validationrule',
                name='created_by',
            ),
            migrations.DeleteModel(
                name='Dataset',
            ),
            migrations.DeleteModel(
                name='DatasetVersion',
            ),
            migrations.DeleteModel(
                name='IdempotentRequest',
            ),
            migrations.DeleteModel(
                name='Job',
            ),
            migrations.DeleteModel(
                name='RunDataset',
            ),
            migrations.DeleteModel(
                name='SweepTrial',
            ),
            migrations.DeleteModel(
                name='Sweep',
            ),
            migrations.DeleteModel(
                name='TrainingRun',
            ),
            migrations.DeleteModel(
                name='ValidationRule',
            ),
        ]),
        migrations.RunPython(content_types_follow, content_types_back),
    ]
