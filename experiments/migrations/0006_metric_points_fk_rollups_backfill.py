"""Metric points: no database foreign key per point on PostgreSQL.

PostgreSQL checks a foreign key row by row: for a batch of 1,000 points that was
1,000 lookups and row locks on the same run at commit, about as long as the
COPY of the points itself. Every batch also writes the run's LatestMetric and
MetricRollup rows in the same transaction, and their foreign keys stay: a
batch that adds a key or a block for a run deleted meanwhile fails whole.
Deleting a run still deletes its points (on_delete=CASCADE is Django's).

What is given up: Steward never deletes runs, but if one is deleted by hand
while a batch that only updates its existing latest values and blocks is
being stored, that batch's points can stay behind, unreachable, where the
constraint would have failed the delete.

On SQLite the constraint is part of the table's definition, and dropping it
would copy the whole metric table: it is left in place there.

Rollups are rebuilt from the points: a downsampled history takes its total from
them, so every point stored before they existed (migration 0004) is counted in
one. Ties for a block's min or max go to the point stored first, as at ingestion.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "experiments_metric"


def _run_foreign_keys(schema_editor) -> list[str]:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return [name for name, info in constraints.items()
            if info["foreign_key"] and info["columns"] == ["run_id"]]


def drop_run_foreign_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _run_foreign_keys(schema_editor):
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {schema_editor.quote_name(name)}")


def add_run_foreign_key(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql" or _run_foreign_keys(schema_editor):
        return
    metric = apps.get_model("experiments", "Metric")
    name = schema_editor._fk_constraint_name(metric, metric._meta.get_field("run"),
                                             "_fk_%(to_table)s_%(to_column)s")
    schema_editor.execute(
        f"ALTER TABLE {TABLE} ADD CONSTRAINT {schema_editor.quote_name(str(name))} FOREIGN KEY (run_id) "
        "REFERENCES experiments_run (id) DEFERRABLE INITIALLY DEFERRED"
    )


ROLLUP_BLOCK = 64  # MetricRollup.ROLLUP_BLOCK when this was written

# Python's step // ROLLUP_BLOCK (it floors) in SQL, whose / and % truncate: step
# minus its non-negative remainder is an exact multiple, so no int64 overflows.
_BLOCK = f"(step - ((step % {ROLLUP_BLOCK}) + {ROLLUP_BLOCK}) % {ROLLUP_BLOCK}) / {ROLLUP_BLOCK}"


def _extreme(rank: str, column: str) -> str:
    return f"MAX(CASE WHEN {rank} = 1 AND value IS NOT NULL THEN {column} END)"


REBUILD_ROLLUPS = (
    "INSERT INTO experiments_metricrollup (run_id, key, block, count, min_value, min_step, "
    "min_timestamp, max_value, max_step, max_timestamp) "
    "SELECT run_id, key, block, COUNT(*), "
    + ", ".join(_extreme(rank, column) for rank in ("low", "high")
                for column in ("value", "step", "timestamp"))
    + " FROM (SELECT run_id, key, block, value, step, timestamp, "
    # NaN is stored as NULL: counted, never a min or max.
    "ROW_NUMBER() OVER (PARTITION BY run_id, key, block ORDER BY value IS NULL, value, id) AS low, "
    "ROW_NUMBER() OVER (PARTITION BY run_id, key, block ORDER BY value IS NULL, value DESC, id) AS high "
    f"FROM (SELECT run_id, key, {_BLOCK} AS block, value, step, timestamp, id "
    "FROM experiments_metric) AS points) AS ranked "
    "GROUP BY run_id, key, block"
)


def rebuild_rollups(apps, schema_editor):
    # A cursor without parameters: the statement's % is SQL's, not a placeholder.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DELETE FROM experiments_metricrollup")
        cursor.execute(REBUILD_ROLLUPS)


class Migration(migrations.Migration):

    dependencies = [
        ("experiments", "0005_metric_history_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(drop_run_foreign_key, add_run_foreign_key),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="metric",
                    name="run",
                    field=models.ForeignKey(db_constraint=False, db_index=False,
                                            on_delete=django.db.models.deletion.CASCADE,
                                            related_name="metric_points", to="experiments.run"),
                ),
            ],
        ),
        migrations.RunPython(rebuild_rollups, migrations.RunPython.noop),
    ]
