"""Operational health of the versions behind a monitor's alias, from the prediction log:
requests and rows per minute, and rows per second."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from monitoring.models import Monitor
from monitoring.windows import alias_intervals
from registry.models import PredictionLog


def health_series(monitor: Monitor, *, since: dt.datetime) -> dict:
    """Per minute since ``since``: requests, rows and rows/s served by the alias's versions."""
    now = timezone.now()
    q = Q()
    for version_id, begin, end in alias_intervals(monitor, until=now):
        part = Q(model_version_id=version_id, created_at__lt=end)
        if begin is not None:
            part &= Q(created_at__gte=begin)
        q |= part
    if not q:
        return {"minutes": [], "requests": [], "rows": [], "rows_per_second": []}
    buckets = (
        PredictionLog.objects.filter(q, created_at__gte=since)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute")
        .annotate(requests=Count("id"), rows=Sum("rows"))
        .order_by("minute")
    )
    out: dict[str, list] = {"minutes": [], "requests": [], "rows": [], "rows_per_second": []}
    for bucket in buckets:
        out["minutes"].append(bucket["minute"].isoformat())
        out["requests"].append(bucket["requests"])
        out["rows"].append(bucket["rows"])
        out["rows_per_second"].append(round(bucket["rows"] / 60, 3))
    return out
