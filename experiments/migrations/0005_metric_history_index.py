"""Metric indexes: one that serves a history read whole, and no run-only ones.

A history is read in (step, timestamp, id) order: metric_run_key_step_ts gives that
order and holds the value, where metric_run_key_step left a sort and a table
lookup per point.

Each metric table has a wider index that starts with run (metric_run_key_step_ts and
the unique constraints), which serves every lookup by run, including the
cascade when a run is deleted. The run-only index was one more b-tree written
for every point ingested.

The index is dropped by name, found by introspection, rather than by letting
AlterField do it: on SQLite, AlterField would copy the whole metric table.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLES = ("experiments_metric", "experiments_latestmetric", "experiments_metricrollup")


def _run_only_indexes(schema_editor, table: str) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name for name, info in constraints.items()
        if info["index"] and info["columns"] == ["run_id"]
        and not info["unique"] and not info["primary_key"] and not info["foreign_key"]
    ]


def drop_run_only_indexes(apps, schema_editor):
    for table in TABLES:
        for name in _run_only_indexes(schema_editor, table):
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_run_only_indexes(apps, schema_editor):
    for table in TABLES:
        if not _run_only_indexes(schema_editor, table):
            name = schema_editor._create_index_name(table, ["run_id"])
            schema_editor.execute(
                f"CREATE INDEX {schema_editor.quote_name(name)} ON {schema_editor.quote_name(table)} (run_id)"
            )


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0004_metric_rollup"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="metric", name="metric_run_key_step"),
        migrations.AddIndex(
            model_name="metric",
            index=models.Index(fields=["run", "key", "step", "timestamp", "id", "value"],
                               name="metric_run_key_step_ts"),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(drop_run_only_indexes, create_run_only_indexes),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="latestmetric",
                    name="run",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="latest_metrics", to="experiments.run"),
                ),
                migrations.AlterField(
                    model_name="metric",
                    name="run",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="metric_points", to="experiments.run"),
                ),
                migrations.AlterField(
                    model_name="metricrollup",
                    name="run",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="+", to="experiments.run"),
                ),
            ],
        ),
    ]
