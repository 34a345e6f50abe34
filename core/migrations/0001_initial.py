"""The Job and IdempotentRequest models now belong to core. Their tables keep their names
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
        # The tables were created by experiments' migrations.
        ('experiments', '0012_experiment_name_500'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='IdempotentRequest',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('key', models.CharField(max_length=200)),
                    ('scope', models.CharField(max_length=300)),
                    ('request_hash', models.CharField(blank=True, default='', max_length=64)),
                    ('status_code', models.PositiveSmallIntegerField()),
                    ('response', models.JSONField()),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'db_table': 'experiments_idempotentrequest',
                    'constraints': [models.UniqueConstraint(fields=('user', 'key'), name='idempotent_request_unique')],
                },
            ),
            migrations.CreateModel(
                name='Job',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('kind', models.CharField(max_length=100)),
                    ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled')], default='queued', max_length=10)),
                    ('progress', models.PositiveSmallIntegerField(default=0)),
                    ('message', models.CharField(blank=True, max_length=500)),
                    ('params', models.JSONField(blank=True, default=dict)),
                    ('result', models.JSONField(blank=True, null=True)),
                    ('error', models.TextField(blank=True)),
                    ('log', models.TextField(blank=True)),
                    ('attempts', models.PositiveSmallIntegerField(default=0)),
                    ('cancel_requested', models.BooleanField(default=False)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
                    ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to=settings.AUTH_USER_MODEL)),
                    ('project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to='accounts.project')),
                ],
                options={
                    'db_table': 'experiments_job',
                    'ordering': ['-created_at'],
                    'indexes': [models.Index(fields=['status', 'heartbeat_at'], name='experiments_status_7560d5_idx')],
                },
            ),
        ]),
    ]
