"""Datasets, versions, rules and run lineage now belong to datasets. Their tables keep their
names (db_table), so this only tells Django's state where they live: no table is touched.
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
        ('experiments', '0012_experiment_name_500'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Dataset',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=200)),
                    ('description', models.TextField(blank=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('lifecycle', models.CharField(choices=[('active', 'Active'), ('deleted', 'Deleted')], default='active', max_length=10)),
                    ('deleted_at', models.DateTimeField(blank=True, null=True)),
                    ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='datasets', to='accounts.project')),
                ],
                options={
                    'db_table': 'experiments_dataset',
                    'ordering': ['name'],
                },
            ),
            migrations.CreateModel(
                name='DatasetVersion',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('version', models.PositiveIntegerField()),
                    ('sha256', models.CharField(max_length=64)),
                    ('storage_name', models.CharField(max_length=1200)),
                    ('format', models.CharField(choices=[('csv', 'Csv'), ('parquet', 'Parquet')], max_length=10)),
                    ('read_options', models.JSONField(blank=True, default=dict)),
                    ('original_name', models.CharField(blank=True, max_length=255)),
                    ('size', models.BigIntegerField()),
                    ('row_count', models.BigIntegerField()),
                    ('column_count', models.PositiveIntegerField()),
                    ('columns', models.JSONField(default=list)),
                    ('profile', models.JSONField(blank=True, null=True)),
                    ('validation', models.JSONField(blank=True, null=True)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='datasets.dataset')),
                    ('profile_job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job')),
                    ('validation_job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='core.job')),
                ],
                options={
                    'db_table': 'experiments_datasetversion',
                    'ordering': ['dataset', '-version'],
                },
            ),
            migrations.CreateModel(
                name='RunDataset',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('direction', models.CharField(choices=[('input', 'Input'), ('output', 'Output')], max_length=6)),
                    ('role', models.CharField(blank=True, max_length=50)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('dataset_version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='run_links', to='datasets.datasetversion')),
                    ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dataset_links', to='experiments.run')),
                ],
                options={
                    'db_table': 'experiments_rundataset',
                    'ordering': ['created_at', 'id'],
                },
            ),
            migrations.CreateModel(
                name='ValidationRule',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('kind', models.CharField(choices=[('not_null', 'Not Null'), ('range', 'Range'), ('allowed_values', 'Allowed Values'), ('unique', 'Unique'), ('schema_unchanged', 'Schema Unchanged')], max_length=20)),
                    ('column', models.CharField(blank=True, max_length=500)),
                    ('config', models.JSONField(blank=True, default=dict)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('dataset', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rules', to='datasets.dataset')),
                ],
                options={
                    'db_table': 'experiments_validationrule',
                    'ordering': ['id'],
                },
            ),
            migrations.AddConstraint(
                model_name='dataset',
                constraint=models.UniqueConstraint(fields=('project', 'name'), name='dataset_unique_name'),
            ),
            migrations.AddConstraint(
                model_name='datasetversion',
                constraint=models.UniqueConstraint(fields=('dataset', 'version'), name='dataset_version_unique'),
            ),
            migrations.AddConstraint(
                model_name='datasetversion',
                constraint=models.UniqueConstraint(fields=('dataset', 'sha256'), name='dataset_version_unique_sha'),
            ),
            migrations.AddConstraint(
                model_name='rundataset',
                constraint=models.UniqueConstraint(fields=('run', 'dataset_version', 'direction', 'role'), name='run_dataset_unique'),
            ),
        ]),
    ]
