"""Foreign keys to jobs and dataset versions now name core.Job and datasets.DatasetVersion;
the tables are the same, so no column or constraint changes.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('datasets', '0001_initial'),
        ('monitoring', '0003_retrain_data'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='monitor',
                name='reference_dataset_version',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='datasets.datasetversion'),
            ),
            migrations.AlterField(
                model_name='monitorreport',
                name='job',
                field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job'),
            ),
            migrations.AlterField(
                model_name='monitorreport',
                name='reference_dataset_version',
                field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='datasets.datasetversion'),
            ),
            migrations.AlterField(
                model_name='retraining',
                name='dataset_version',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='datasets.datasetversion'),
            ),
            migrations.AlterField(
                model_name='retraining',
                name='job',
                field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job'),
            ),
        ]),
    ]
