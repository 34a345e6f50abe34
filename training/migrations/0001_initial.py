"""Sweeps, trials and training records now belong to training. Their tables keep their names
(db_table), so this only tells Django's state where they live: no table is touched.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0002_project_slug_checked_to_end'),
        ('core', '0001_initial'),
        ('experiments', '0013_models_moved_to_core_datasets_training'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Sweep',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(blank=True, max_length=200)),
                    ('base_spec', models.JSONField()),
                    ('search', models.JSONField()),
                    ('objective', models.CharField(max_length=250)),
                    ('goal', models.CharField(default='max', max_length=3)),
                    ('parallelism', models.PositiveSmallIntegerField(default=2)),
                    ('status', models.CharField(choices=[('running', 'Running'), ('finished', 'Finished'), ('cancelled', 'Cancelled')], default='running', max_length=10)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('best_run', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='experiments.run')),
                    ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('experiment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sweeps', to='experiments.experiment')),
                    ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sweeps', to='accounts.project')),
                ],
                options={
                    'db_table': 'experiments_sweep',
                    'ordering': ['-created_at'],
                },
            ),
            migrations.CreateModel(
                name='TrainingRun',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('spec', models.JSONField()),
                    ('resolved_features', models.JSONField(default=list)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('job', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='training_run', to='core.job')),
                    ('rerun_of', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reruns', to='experiments.run')),
                    ('run', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='training', to='experiments.run')),
                    ('sweep', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='training_runs', to='training.sweep')),
                ],
                options={
                    'db_table': 'experiments_trainingrun',
                },
            ),
            migrations.CreateModel(
                name='SweepTrial',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('index', models.PositiveIntegerField()),
                    ('params', models.JSONField()),
                    ('job', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='sweep_trial', to='core.job')),
                    ('sweep', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='trials', to='training.sweep')),
                ],
                options={
                    'db_table': 'experiments_sweeptrial',
                    'ordering': ['index'],
                    'constraints': [models.UniqueConstraint(fields=('sweep', 'index'), name='sweep_trial_unique_index')],
                },
            ),
        ]),
    ]
