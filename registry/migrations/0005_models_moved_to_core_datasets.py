"""Foreign keys to jobs and dataset versions now name core.Job and datasets.DatasetVersion;
the tables are the same, so no column or constraint changes.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('datasets', '0001_initial'),
        ('registry', '0004_model_name_checked_to_end'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='modelversion',
                name='check_job',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job'),
            ),
            migrations.AlterField(
                model_name='modelversion',
                name='training_dataset_version',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='model_versions', to='datasets.datasetversion'),
            ),
        ]),
    ]
