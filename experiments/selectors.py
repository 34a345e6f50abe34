"""Read queries shared by the API and the web pages."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from django.core.exceptions import ValidationError

from accounts.models import Role
from accounts.permissions import projects_visible_to, require_role
from core import validation as v
from core.errors import NotFound, PermissionDenied
from experiments.metric_store import metric_store
from experiments.models import LatestMetric, Lifecycle, Param, Run, Tag


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
    """Give each run ``.details``: its params, latest metrics and tags (see ``details_by_run``)."""
    by_id = details_by_run([run.pk for run in runs])
    for run in runs:
        run.details = by_id[run.pk]
    return runs


def details_by_run(run_ids: list) -> dict:
    """Each run id's params, latest metrics and tags.

    Three flat queries for any number of runs, read as tuples: tables and
    search pages of hundreds of runs never build a model object per value.
    """
    by_id = {run_id: RunDetails({}, {}, {}) for run_id in run_ids}
    ids = list(by_id)
    for run_id, key, value in Param.objects.filter(run_id__in=ids).values_list("run_id", "key", "value"):
        by_id[run_id].params[key] = value
    for run_id, key, value, step, ts in LatestMetric.objects.filter(run_id__in=ids).values_list(
        "run_id", "key", "value", "step", "timestamp"
    ):
        by_id[run_id].metrics[key] = (value, step, ts)
    for run_id, key, value in Tag.objects.filter(run_id__in=ids).values_list("run_id", "key", "value"):
        by_id[run_id].tags[key] = value
    return by_id


HISTORY_CHUNK = 10_000


@dataclass(frozen=True)
class HistoryJson:
    total: int
    downsampled: bool
    chunks: Iterator[bytes]  # joined, the JSON answer


def metric_history(*, run: Run, key: str, max_points: int | None = None) -> HistoryJson:
    """Every point of one metric by step, or at most ``max_points`` of them
    (see ``MetricStore.history_sample``: spikes survive the downsampling).

    The answer ``{"key", "total", "downsampled", "points"}`` comes as JSON, read
    and encoded HISTORY_CHUNK points at a time: a full history of millions of
    points is never held whole as dicts.
    """
    store = metric_store()
    if max_points is not None:
        total, sampled = store.history_sample(run_id=run.pk, key=key, max_points=max_points)
        if sampled is not None:
            body = orjson.dumps({"key": key, "total": total, "downsampled": True,
                                 "points": _points_out(sampled)})
            return HistoryJson(total, True, iter([body]))
    else:
        total = store.history_count(run_id=run.pk, key=key)

    def chunks() -> Iterator[bytes]:
        yield orjson.dumps({"key": key, "total": total, "downsampled": False})[:-1] + b',"points":['
        separator = b""
        for chunk in store.history_chunks(run_id=run.pk, key=key, size=HISTORY_CHUNK):
            # orjson writes each slice as "[...]"; their insides join into one list.
            yield separator + orjson.dumps(_points_out(chunk))[1:-1]
            separator = b","
        yield b"]}"

    return HistoryJson(total, False, chunks())


def metric_history_page(*, run: Run, key: str, after: tuple[int, int, int] | None,
                        limit: int) -> list[tuple]:
    """One page of a metric's points as (step, timestamp, value, id), in history order, from
    just past the point whose (step, timestamp, id) is ``after``."""
    return metric_store().history_page(run_id=run.pk, key=key, after=after, limit=limit)


_INF = math.inf


def _points_out(rows: Iterable[tuple]) -> list[dict]:
    """(step, value, timestamp) rows as API points; runs once per point read."""
    float_out = v.float_out
    return [
        {"step": step, "value": value if value is not None and -_INF < value < _INF else float_out(value),
         "timestamp": ts}
        for step, value, ts in rows
    ]
