"""The prediction log keeps one record per predict request instead of one per input row.

Existing rows are regrouped by request: inputs become {column: [values]},
predictions and probabilities lists in row order.
"""

import django.db.models.deletion
from django.db import migrations, models

CHUNK = 500


def _regroup(apps, schema_editor):
    Log = apps.get_model("registry", "PredictionLog")
    logs = Log.objects.using(schema_editor.connection.alias)
    group: list = []
    updates: list = []
    drop: list[int] = []

    def close_group():
        first = group[0]
        names = list(first.inputs)
        first.inputs = {n: [log.inputs.get(n) for log in group] for n in names}
        first.predictions = [log.predictions for log in group]
        probabilities = [log.probabilities for log in group]
        first.probabilities = None if all(p is None for p in probabilities) else probabilities
        first.rows = len(group)
        updates.append(first)
        drop.extend(log.pk for log in group[1:])

    def write(final: bool = False):
        if len(updates) >= CHUNK or (final and updates):
            logs.bulk_update(updates, ["inputs", "predictions", "probabilities", "rows"])
            updates.clear()
        if len(drop) >= CHUNK or (final and drop):
            logs.filter(pk__in=drop).delete()
            drop.clear()

    for log in logs.order_by("request_id", "model_version_id", "row", "id").iterator(chunk_size=2000):
        if group and (group[0].request_id, group[0].model_version_id) != (log.request_id, log.model_version_id):
            close_group()
            group = []
            write()
        group.append(log)
    if group:
        close_group()
    write(final=True)


def _explode(apps, schema_editor):
    Log = apps.get_model("registry", "PredictionLog")
    logs = Log.objects.using(schema_editor.connection.alias)
    if schema_editor.connection.vendor == "postgresql":
        # Checked now, so the ALTER TABLEs after this step find no pending trigger events.
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for log in logs.filter(rows=1).iterator(chunk_size=2000):
        log.inputs = {n: v[0] for n, v in log.inputs.items()}
        log.predictions = log.predictions[0]
        log.probabilities = None if log.probabilities is None else log.probabilities[0]
        log.save(update_fields=["inputs", "predictions", "probabilities"])
    for log in logs.filter(rows__gt=1).iterator(chunk_size=200):
        copies = []
        for i in range(log.rows):
            copies.append(Log(
                model_version_id=log.model_version_id, request_id=log.request_id, row=i,
                inputs={n: v[i] for n, v in log.inputs.items()}, predictions=log.predictions[i],
                probabilities=None if log.probabilities is None else log.probabilities[i],
                created_at=log.created_at,
            ))
        logs.bulk_create(copies)
        log.delete()


def _compress_with_lz4(apps, schema_editor):
    # PostgreSQL's default TOAST compression (pglz) spends more CPU on a
    # request's inputs than parsing them does; lz4 is several times cheaper.
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
        if row and row[0]:
            table = schema_editor.quote_name(apps.get_model("registry", "PredictionLog")._meta.db_table)
            cursor.execute(f"ALTER TABLE {table} ALTER COLUMN inputs SET COMPRESSION lz4, "
                           "ALTER COLUMN predictions SET COMPRESSION lz4, "
                           "ALTER COLUMN probabilities SET COMPRESSION lz4")


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0002_training_dataset_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="predictionlog",
            name="rows",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.RenameField(
            model_name="predictionlog",
            old_name="prediction",
            new_name="predictions",
        ),
        migrations.RunPython(_regroup, _explode),
        migrations.RemoveField(
            model_name="predictionlog",
            name="row",
        ),
        migrations.AlterField(
            model_name="predictionlog",
            name="model_version",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="registry.modelversion"),
        ),
        migrations.RunPython(_compress_with_lz4, migrations.RunPython.noop),
    ]
