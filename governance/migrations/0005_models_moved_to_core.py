"""Foreign keys to jobs now name core.Job; the table is the same, so no column or constraint
changes.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
        ('governance', '0004_merge_20261203_1236'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='explanation',
                name='job',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job'),
            ),
            migrations.AlterField(
                model_name='fairnessreport',
                name='job',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job'),
            ),
        ]),
    ]
