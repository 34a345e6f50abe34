"""Read queries shared by the API and the web pages."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import orjson
import psycopg
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.models import Role
from accounts.permissions import projects_visible_to, require_role
from core.errors import NotFound, PermissionDenied
from experiments import validation as v
from experiments.models import LatestMetric, Lifecycle, Metric, MetricRollup, Param, Run, Tag


def run_for_user(user, run_id, min_role: Role = Role.VIEWER, *, allow_deleted: bool = False) -> Run:
    """A run the user may see (404 otherwise), checked against ``min_role`` (403).

    A run in the trash is read-only: asked for with an editor's role (to change it) it is a
    403 unless ``allow_deleted`` (deleting it again, restoring it).
    """
    try:
        run = Run.objects.select_related("experiment", "project", "author").get(pk=run_id)
    except (Run.DoesNotExist, ValueError, TypeError, ValidationError):
        # A malformed id is just another run that does not exist.
        raise NotFound("No such run.") from None
    require_role(user, run.project, min_role)
    if min_role >= Role.EDITOR and run.lifecycle == Lifecycle.DELETED and not allow_deleted:
        raise PermissionDenied("This run is in the trash: restore it before changing it.")
    return run


def runs_by_id_prefix(*, user, digits: str, project_slug: str | None = None, limit: int = 10) -> list[Run]:
    """Runs the user can see whose id starts with the hex ``digits`` (hyphens left out), at most ``limit``.

    A prefix is a range of ids, so the primary key's index answers it on both
    databases (uuid on PostgreSQL, 32 hex characters on SQLite: same order).
    """
    low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
    runs = Run.objects.filter(pk__gte=low, pk__lte=high, project__in=projects_visible_to(user))
    if project_slug:
        runs = runs.filter(project__slug=project_slug)
    return list(runs.select_related("project", "experiment").order_by("pk")[:limit])


@dataclass(frozen=True)
class RunDetails:
    params: dict[str, str]
    metrics: dict[str, tuple[float | None, int, int]]  # key -> (value, step, timestamp); NaN is None
    tags: dict[str, str]


def runs_with_details(runs: list[Run]) -> list[Run]:
    """Give each run ``.details``: its params, latest metrics and tags.

    Three flat queries for any number of runs, read as tuples: tables and
    search pages of hundreds of runs never build a model object per value.
    """
    by_id = {run.pk: RunDetails({}, {}, {}) for run in runs}
    ids = list(by_id)
    for run_id, key, value in Param.objects.filter(run_id__in=ids).values_list("run_id", "key", "value"):
        by_id[run_id].params[key] = value
    for run_id, key, value, step, ts in LatestMetric.objects.filter(run_id__in=ids).values_list(
        "run_id", "key", "value", "step", "timestamp"
    ):
        by_id[run_id].metrics[key] = (value, step, ts)
    for run_id, key, value in Tag.objects.filter(run_id__in=ids).values_list("run_id", "key", "value"):
        by_id[run_id].tags[key] = value
    for run in runs:
        run.details = by_id[run.pk]
    return runs


HISTORY_CHUNK = 10_000


@dataclass(frozen=True)
class HistoryJson:
    total: int
    downsampled: bool
    chunks: Iterator[bytes]  # joined, the JSON answer


def metric_history(*, run: Run, key: str, max_points: int | None = None) -> HistoryJson:
    """Every point of one metric by step, or at most ``max_points`` of them.

    Downsampling splits the points, in step order, into max_points / 2 buckets
    of about equal counts and keeps, per bucket, the point with the lowest and
    the one with the highest value (at their own steps), so spikes survive.
    Long, dense series are downsampled from their rollups (MetricRollup), so a
    million points cost thousands of rows read, not a million.

    The answer ``{"key", "total", "downsampled", "points"}`` comes as JSON, read
    and encoded HISTORY_CHUNK points at a time: a full history of millions of
    points is never held whole as dicts.
    """
    if max_points is not None:
        sampled = _downsampled_from_rollups(run, key, max_points)
        if sampled is not None:
            return sampled
    qs = Metric.objects.filter(run=run, key=key)
    total = qs.count()
    if max_points is not None and total > max_points:
        rows = qs.order_by("step", "timestamp", "id").values_list("step", "value", "timestamp")
        points = _points_out(_downsample_rows(list(rows), max(1, max_points // 2)))
        body = orjson.dumps({"key": key, "total": total, "downsampled": True, "points": points})
        return HistoryJson(total, True, iter([body]))
    rows = qs.order_by("step", "timestamp", "id").values_list("step", "value", "timestamp")

    def chunks() -> Iterator[bytes]:
        yield orjson.dumps({"key": key, "total": total, "downsampled": False})[:-1] + b',"points":['
        separator = b""
        for chunk in _chunks(rows.iterator(chunk_size=HISTORY_CHUNK), HISTORY_CHUNK):
            # orjson writes each slice as "[...]"; their insides join into one list.
            yield separator + orjson.dumps(_points_out(chunk))[1:-1]
            separator = b","
        yield b"]}"

    return HistoryJson(total, False, chunks())


def _downsampled_from_rollups(run: Run, key: str, max_points: int) -> HistoryJson | None:
    """The downsampled answer from the series' rollups alone, or None when they
    do not serve it (a short series, or one with too few points per block).

    The total is the rollups' count: every point metrics_log stores is counted
    in its block's rollup in the same transaction (and migration 0006 counted
    those stored before rollups existed), while counting a long series' points
    themselves would cost more than everything else this answer reads. A series
    written around metrics_log has no rollups and is read whole.
    """
    rollups = _rollup_rows(run, key)
    total = sum(r[0] for r in rollups)
    buckets = max(1, max_points // 2)
    # Rollups help only when blocks hold several points each.
    if total <= max_points or not 2 * buckets <= len(rollups) <= total // 4:
        return None
    points = _points_out(_downsample_rollups(rollups, buckets, total))
    body = orjson.dumps({"key": key, "total": total, "downsampled": True, "points": points})
    return HistoryJson(total, True, iter([body]))


_ROLLUP_COLUMNS = ("count", "min_value", "min_step", "min_timestamp",
                   "max_value", "max_step", "max_timestamp")


def _rollup_rows(run: Run, key: str) -> list[tuple]:
    """A series' rollups in block order, as (count, min value/step/timestamp,
    max value/step/timestamp) tuples."""
    if connection.vendor != "postgresql":
        return list(MetricRollup.objects.filter(run=run, key=key).order_by("block")
                    .values_list(*_ROLLUP_COLUMNS))
    # Thousands of rows of seven numbers: in binary, by psycopg's own cursor,
    # they cost a third of what formatting and parsing them as text does.
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT {', '.join(_ROLLUP_COLUMNS)} FROM {MetricRollup._meta.db_table} "
            "WHERE run_id = %s AND key = %s ORDER BY block",
            [run.pk, key], binary=True,
        )
        return cursor.fetchall()


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


_INF = math.inf


def _points_out(rows: Iterable[tuple]) -> list[dict]:
    """(step, value, timestamp) rows as API points; runs once per point read."""
    float_out = v.float_out
    return [
        {"step": step, "value": value if value is not None and -_INF < value < _INF else float_out(value),
         "timestamp": ts}
        for step, value, ts in rows
    ]


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
