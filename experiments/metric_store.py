"""Where metric points, each key's latest value and the per-block rollups are stored and read.

One interface, ``MetricStore``, with one implementation per database, chosen
once from the connection's vendor (``metric_store()``): PostgreSQL's sends
points with binary COPY and the batch's summaries as server-bound arrays;
SQLite's writes multi-row INSERTs on the sqlite3 cursor underneath Django's.
What does not depend on the database (a batch's summaries, the lookup of
points already stored, reading and downsampling a history) lives in the base
class, so both answer the same inputs with the same outputs.

NaN is stored as NULL (SQLite cannot hold NaN); +/-inf are stored as they are.
"""

from __future__ import annotations

import functools
import math
import sqlite3
import struct
import uuid
from collections.abc import Iterator
from itertools import chain, islice
from typing import NamedTuple

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import Q

from experiments.models import LatestMetric, Metric, MetricRollup


class MetricPoint(NamedTuple):
    key: str
    value: float
    step: int
    timestamp: int


def point_identity(point: MetricPoint) -> tuple:
    """What makes two points the same point: key, step, timestamp and value, NaN equal to NaN."""
    key, value, step, timestamp = point
    return (key, step, timestamp, None if value != value else value)


class MetricStore:
    """The metric tables of one database. Run ids are ``uuid.UUID``; a history row is
    ``(step, value, timestamp)`` with NaN as None, in (step, timestamp, insertion) order."""

    vendor = ""

    # --- writes -------------------------------------------------------------------------------

    def points_append(self, *, run_id: uuid.UUID, points: list[MetricPoint]) -> None:
        """Store every point and fold the batch into the latest values and rollups, together
        or not at all. No savepoint inside a caller's transaction: what fails here is the
        database, which leaves that transaction unusable anyway."""
        if not points:
            return
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            self._append(cursor, run_id, points)

    def points_add_new(self, *, run_id: uuid.UUID, points: list[MetricPoint]) -> int:
        """Store only the points not stored yet (see ``point_identity``), however often a
        retrying client sends them, so latest values and rollups count each point once.
        Returns how many were new.

        The caller holds the run's row lock in its transaction, so two retries of one batch
        cannot both find their points missing.
        """
        fresh: list[MetricPoint] = []
        seen: set[tuple] = set()
        for point in points:
            ident = point_identity(point)
            if ident not in seen:
                seen.add(ident)
                fresh.append(point)
        if not fresh:
            return 0
        existing = self._stored_identities(run_id, fresh)
        if existing:
            fresh = [p for p in fresh if point_identity(p) not in existing]
        self.points_append(run_id=run_id, points=fresh)
        return len(fresh)

    def _append(self, cursor, run_id: uuid.UUID, points: list[MetricPoint]) -> None:
        raise NotImplementedError

    @staticmethod
    def _stored_identities(run_id: uuid.UUID, points: list[MetricPoint]) -> set[tuple]:
        keys = {p.key for p in points}
        steps = {p.step for p in points}
        low, high = min(steps), max(steps)
        stored = Metric.objects.filter(run_id=run_id, key__in=keys)
        if high - low <= 4 * len(points):
            # A batch's steps are usually consecutive: one range of the (run, key, step) index.
            stored = stored.filter(step__gte=low, step__lte=high)
        else:
            stored = stored.filter(step__in=steps, timestamp__in={p.timestamp for p in points})
        return {
            (key, step, ts, value if value is None or not math.isnan(value) else None)
            for key, step, ts, value in stored.values_list("key", "step", "timestamp", "value")
        }

    # --- reads --------------------------------------------------------------------------------

    def history_count(self, *, run_id: uuid.UUID, key: str) -> int:
        return Metric.objects.filter(run_id=run_id, key=key).count()

    def history_chunks(self, *, run_id: uuid.UUID, key: str, size: int) -> Iterator[list[tuple]]:
        """The whole history as lists of at most ``size`` rows, read ``size`` rows at a time:
        millions of points are never held at once."""
        rows = self._history(run_id, key).iterator(chunk_size=size)
        while chunk := list(islice(rows, size)):
            yield chunk

    def history_page(self, *, run_id: uuid.UUID, key: str, after: tuple[int, int, int] | None,
                     limit: int) -> list[tuple]:
        """At most ``limit`` rows of (step, timestamp, value, id) in history order, from just
        past the row whose (step, timestamp, id) is ``after`` (from the start when None)."""
        rows = Metric.objects.filter(run_id=run_id, key=key)
        if after is not None:
            step, ts, last_id = after
            rows = rows.filter(Q(step__gt=step) | Q(step=step, timestamp__gt=ts)
                               | Q(step=step, timestamp=ts, id__gt=last_id))
        return list(rows.order_by("step", "timestamp", "id")
                    .values_list("step", "timestamp", "value", "id")[:limit])

    def rollup_rows(self, *, run_id: uuid.UUID, key: str) -> list[tuple]:
        """A series' rollups in block order, as (count, min value/step/timestamp,
        max value/step/timestamp) tuples."""
        return list(MetricRollup.objects.filter(run_id=run_id, key=key).order_by("block")
                    .values_list(*_ROLLUP_COLUMNS))

    def history_sample(self, *, run_id: uuid.UUID, key: str,
                       max_points: int) -> tuple[int, list[tuple] | None]:
        """The series' point count and at most ``max_points`` of its rows, or None for the rows
        when it has no more than that (every point is the answer).

        The points are split, in step order, into max_points / 2 buckets of about equal
        counts; each bucket gives its lowest and its highest value (at their own steps), so
        spikes survive. Long, dense series are sampled from their rollups, so a million points
        cost thousands of rows read, not a million.
        """
        buckets = max(1, max_points // 2)
        rollups = self.rollup_rows(run_id=run_id, key=key)
        # Every point points_append stores is counted in its block's rollup in the same
        # transaction (migration 0006 counted those stored before rollups existed); counting a
        # long series' points themselves would cost more than everything else read here. A
        # series written around the store has no rollups and is read whole.
        total = sum(r[0] for r in rollups)
        # Rollups help only when blocks hold several points each.
        if total > max_points and 2 * buckets <= len(rollups) <= total // 4:
            return total, _downsample_rollups(rollups, buckets, total)
        total = self.history_count(run_id=run_id, key=key)
        if total <= max_points:
            return total, None
        return total, _downsample_rows(list(self._history(run_id, key)), buckets)

    @staticmethod
    def _history(run_id: uuid.UUID, key: str):
        return (Metric.objects.filter(run_id=run_id, key=key).order_by("step", "timestamp", "id")
                .values_list("step", "value", "timestamp"))


_ROLLUP_COLUMNS = ("count", "min_value", "min_step", "min_timestamp",
                   "max_value", "max_step", "max_timestamp")


def metric_summaries(run_id, points: list[MetricPoint]) -> tuple[list[tuple], list[tuple]]:
    """Each key's newest (run_id, key, value, step, timestamp) of a batch, and each
    block's (run_id, key, block, count, min value/step/timestamp, max
    value/step/timestamp). NaN is stored as NULL; this loop runs per point."""
    size = MetricRollup.ROLLUP_BLOCK
    latest: dict[str, tuple] = {}
    blocks: dict[tuple[str, int], list] = {}
    for key, value, step, timestamp in points:
        if value != value:
            value = None
        newest = latest.get(key)
        if newest is None or step > newest[3] or (step == newest[3] and timestamp >= newest[4]):
            latest[key] = (run_id, key, value, step, timestamp)
        block = blocks.get((key, step // size))
        if block is None:
            blocks[(key, step // size)] = (
                [1, value, step, timestamp, value, step, timestamp] if value is not None
                else [1, None, None, None, None, None, None]  # NaN is counted, never a min or max
            )
            continue
        block[0] += 1
        if value is None:
            continue
        if block[1] is None or value < block[1]:
            block[1] = value
            block[2] = step
            block[3] = timestamp
        if block[4] is None or value > block[4]:
            block[4] = value
            block[5] = step
            block[6] = timestamp
    rollups = [(run_id, key, block, *entry) for (key, block), entry in blocks.items()]
    return list(latest.values()), rollups


def _rollups_upsert_sql(rows: str) -> str:
    """Fold per-block (run_id, key, block, count, min value/step/timestamp, max
    value/step/timestamp) ``rows`` into the stored rows (see MetricRollup)."""
    t = MetricRollup._meta.db_table
    lower = (f"{t}.min_value IS NULL OR "
             f"(EXCLUDED.min_value IS NOT NULL AND EXCLUDED.min_value < {t}.min_value)")
    higher = (f"{t}.max_value IS NULL OR "
              f"(EXCLUDED.max_value IS NOT NULL AND EXCLUDED.max_value > {t}.max_value)")
    # SET expressions read the row as it was before the update, on both databases.
    return (
        f"INSERT INTO {t} (run_id, key, block, count, min_value, min_step, min_timestamp, "
        f"max_value, max_step, max_timestamp) {rows} "
        f"ON CONFLICT (run_id, key, block) DO UPDATE SET count = {t}.count + EXCLUDED.count, "
        + ", ".join(
            f"{col} = CASE WHEN {cond} THEN EXCLUDED.{col} ELSE {t}.{col} END"
            for cond, cols in ((lower, ("min_value", "min_step", "min_timestamp")),
                               (higher, ("max_value", "max_step", "max_timestamp")))
            for col in cols
        )
    )


def _latest_upsert_sql(rows: str) -> str:
    """Upsert each key's newest (run_id, key, value, step, timestamp) of a batch."""
    t = LatestMetric._meta.db_table
    # The WHERE on the upsert keeps the newest point when batches arrive out of
    # order or two requests for one run race.
    return (
        f"INSERT INTO {t} (run_id, key, value, step, timestamp) {rows} "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = EXCLUDED.value, step = EXCLUDED.step, "
        f"timestamp = EXCLUDED.timestamp WHERE ({t}.step, {t}.timestamp) "
        "<= (EXCLUDED.step, EXCLUDED.timestamp)"
    )


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_NUMBERS = struct.Struct(">idiqiq").pack  # value, step, timestamp, each with its length
_COPY_NO_VALUE = struct.Struct(">iiqiq").pack  # NULL (NaN), step, timestamp


def _copy_binary(run_id: uuid.UUID, points: list[MetricPoint]) -> bytes:
    """The points as (run_id, key, value, step, timestamp) rows in COPY's binary
    format, NaN as NULL.

    Packed here rather than by psycopg's write_row, which dumps each of the
    five fields of every row on its own: the run id and each key are encoded
    once per batch, the three numbers of a row with one struct call.
    """
    prefix: dict[str, bytes] = {}
    head = struct.pack(">hi", 5, 16) + run_id.bytes
    out = [_COPY_SIGNATURE]
    append = out.append
    for key, value, step, timestamp in points:
        start = prefix.get(key)
        if start is None:
            encoded = key.encode()
            start = prefix[key] = head + struct.pack(">i", len(encoded)) + encoded
        if value != value:
            append(start + _COPY_NO_VALUE(-1, 8, step, 8, timestamp))
        else:
            append(start + _COPY_NUMBERS(8, value, 8, step, 8, timestamp))
    append(_COPY_TRAILER)
    return b"".join(out)


class PostgresMetricStore(MetricStore):
    vendor = "postgresql"

    def _append(self, cursor, run_id: uuid.UUID, points: list[MetricPoint]) -> None:
        # COPY is several times faster than INSERT for thousands of rows, and
        # its binary form spares both sides formatting and parsing numbers.
        with connection.wrap_database_errors, cursor.cursor.copy(
            f"COPY {Metric._meta.db_table} (run_id, key, value, step, timestamp) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(_copy_binary(run_id, points))
            # Worked out while the database stores the points just sent.
            latest, rollups = metric_summaries(run_id, points)
        self._summaries_merge(run_id, latest, rollups)

    @staticmethod
    def _summaries_merge(run_id: uuid.UUID, latest: list[tuple], rollups: list[tuple]) -> None:
        """The latest values and the rollups of a batch in one statement.

        Each column goes as one array that ``unnest`` turns back into rows, so the
        database gets one statement (one round trip, one plan) instead of one per
        key and per block. Its parameters are bound by the server (psycopg's own
        cursor, not Django's, which would write thousands of numbers into the SQL).
        """
        latest_rows = _latest_upsert_sql(
            "SELECT %s, * FROM unnest(%s::varchar[], %s::float8[], %s::int8[], %s::int8[])"
        )
        rollup_rows = _rollups_upsert_sql(
            "SELECT %s, * FROM unnest(%s::varchar[], %s::int8[], %s::int8[], %s::float8[], %s::int8[], "
            "%s::int8[], %s::float8[], %s::int8[], %s::int8[])"
        )
        params = [run_id, *map(list, list(zip(*latest, strict=True))[1:]),
                  run_id, *map(list, list(zip(*rollups, strict=True))[1:])]
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(f"WITH latest AS ({latest_rows}) {rollup_rows}", params)

    def rollup_rows(self, *, run_id: uuid.UUID, key: str) -> list[tuple]:
        # Thousands of rows of seven numbers: in binary, by psycopg's own cursor,
        # they cost a third of what formatting and parsing them as text does.
        connection.ensure_connection()
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(
                f"SELECT {', '.join(_ROLLUP_COLUMNS)} FROM {MetricRollup._meta.db_table} "
                "WHERE run_id = %s AND key = %s ORDER BY block",
                [run_id, key], binary=True,
            )
            return cursor.fetchall()


class SqliteMetricStore(MetricStore):
    vendor = "sqlite"

    def _append(self, cursor, run_id: uuid.UUID, points: list[MetricPoint]) -> None:
        run_hex = run_id.hex  # how Django stores a UUID in SQLite
        self._rows_insert(cursor, Metric._meta.db_table, [
            (run_hex, key, None if value != value else value, step, timestamp)
            for key, value, step, timestamp in points
        ])
        latest, rollups = metric_summaries(run_hex, points)
        cursor.executemany(_latest_upsert_sql("VALUES (%s, %s, %s, %s, %s)"), latest)
        cursor.executemany(_rollups_upsert_sql("VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"), rollups)

    @staticmethod
    def _rows_insert(cursor, table: str, rows: list[tuple]) -> None:
        """INSERT with hundreds of rows per statement, about half the cost of
        executemany's one statement per row.

        The statement is written with SQLite's own ``?`` and run on the sqlite3
        cursor underneath: Django's cursor would rewrite each ``%s`` with a regex,
        which for thousands of placeholders costs as much as the insert itself.
        """
        per_statement = min(500, connection.features.max_query_params // 5)
        columns = f"INSERT INTO {table} (run_id, key, value, step, timestamp) VALUES "
        with connection.wrap_database_errors:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start:start + per_statement]
                sqlite3.Cursor.execute(cursor.cursor, columns + ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                                       list(chain.from_iterable(chunk)))


_STORES = {store.vendor: store for store in (PostgresMetricStore, SqliteMetricStore)}


@functools.cache
def _store_for(vendor: str) -> MetricStore:
    try:
        return _STORES[vendor]()
    except KeyError:
        raise ImproperlyConfigured(
            f"Metrics are stored on PostgreSQL or SQLite, not on {vendor!r}.") from None


def metric_store() -> MetricStore:
    """The store of the configured database."""
    return _store_for(connection.vendor)


def _extremes(candidates: list[tuple]) -> list[tuple]:
    """The lowest and the highest (step, value, timestamp) of a bucket, in step order.

    NaN (None) is kept only when the bucket holds nothing else.
    """
    numbers = [c for c in candidates if c[1] is not None]
    if not numbers:
        return candidates[:1]
    low = min(numbers, key=lambda c: (c[1], c[0]))
    high = max(numbers, key=lambda c: (c[1], -c[0]))
    return [low] if low == high else sorted((low, high))


def _downsample_rows(rows: list[tuple], buckets: int) -> list[tuple]:
    width = -(-len(rows) // buckets)
    picked: list[tuple] = []
    for start in range(0, len(rows), width):
        picked.extend(_extremes(rows[start:start + width]))
    return picked


def _downsample_rollups(rollups: list[tuple], buckets: int, total: int) -> list[tuple]:
    """_extremes over consecutive blocks' mins and maxes, computed as the blocks
    go by (this loop runs per rollup row): the lowest by (value, step), the
    highest by (value, -step). Blocks of only NaN give nothing."""
    target = total / buckets
    picked: list[tuple] = []
    low = high = None
    filled = 0
    for count, lo, lo_step, lo_ts, hi, hi_step, hi_ts in rollups:
        if lo is not None:
            for value, step, ts in ((lo, lo_step, lo_ts), (hi, hi_step, hi_ts)):
                if low is None or value < low[1] or (value == low[1] and step < low[0]):
                    low = (step, value, ts)
                if high is None or value > high[1] or (value == high[1] and step < high[0]):
                    high = (step, value, ts)
        filled += count
        if filled >= target:
            if low is not None:
                picked.extend([low] if low == high else sorted((low, high)))
            low = high = None
            filled = 0
    if low is not None:
        picked.extend([low] if low == high else sorted((low, high)))
    return picked
