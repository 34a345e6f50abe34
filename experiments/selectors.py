"""Read queries shared by the API and the web pages."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404

from accounts.models import Role
from accounts.permissions import require_role
from experiments import validation as v
from experiments.models import Metric, Run


def run_for_user(user, run_id, min_role: Role = Role.VIEWER) -> Run:
    """A run the user may see (404 otherwise), checked against ``min_role`` (403)."""
    try:
        run = Run.objects.select_related("experiment", "project", "author").get(pk=run_id)
    except (Run.DoesNotExist, ValueError, TypeError, ValidationError):
        # A malformed id is just another run that does not exist.
        raise Http404("No such run.") from None
    require_role(user, run.project, min_role)
    return run


def metric_history(*, run: Run, key: str, max_points: int | None = None) -> dict:
    """Every point of one metric by step, or at most ``max_points`` of them.

    Downsampling splits the points, in step order, into at most max_points / 2
    buckets of consecutive points and keeps, per bucket, the point with the
    lowest and the one with the highest value (at their own steps), so spikes
    survive. The database does the bucketing.
    """
    qs = Metric.objects.filter(run=run, key=key)
    total = qs.count()
    if max_points is None or total <= max_points:
        rows = qs.order_by("step", "timestamp", "id").values_list("step", "value", "timestamp")
        points = [{"step": s, "value": v.float_out(val), "timestamp": ts} for s, val, ts in rows]
        return {"key": key, "total": total, "downsampled": False, "points": points}

    # Buckets hold equal numbers of consecutive points rather than equal step
    # ranges: unevenly spaced steps still fill max_points, and no arithmetic on
    # steps (which may be any int64) can overflow.
    buckets = max(1, max_points // 2)
    width = -(-total // buckets)
    table = Metric._meta.db_table
    run_id = run.pk.hex if connection.vendor == "sqlite" else run.pk
    # NaN is stored as NULL; NULLs sort last in both orders here, so they are
    # kept only in a bucket that holds nothing else.
    sql = f"""
        SELECT step, value, timestamp FROM (
            SELECT step, value, timestamp,
                ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY
                    CASE WHEN value IS NULL THEN 1 ELSE 0 END, value ASC, step) AS rmin,
                ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY
                    CASE WHEN value IS NULL THEN 1 ELSE 0 END, value DESC, step) AS rmax
            FROM (
                SELECT step, value, timestamp,
                    (ROW_NUMBER() OVER (ORDER BY step, timestamp, id) - 1) / %s AS bucket
                FROM {table} WHERE run_id = %s AND key = %s
            ) numbered
        ) ranked WHERE rmin = 1 OR rmax = 1 ORDER BY step, timestamp
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [width, run_id, key])
        rows = cursor.fetchall()
    points = [{"step": s, "value": v.float_out(val), "timestamp": ts} for s, val, ts in rows]
    return {"key": key, "total": total, "downsampled": True, "points": points}
