"""Monitoring reads with permission: 404 for what the user cannot see."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Role
from accounts.permissions import projects_visible_to, require_role
from monitoring.models import Alert, AlertStatus, Monitor, MonitorReport


def _by_id(queryset: QuerySet, pk, what: str):
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        pk = 0
    # Ids beyond a bigint name nothing (and would overflow the query).
    obj = queryset.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if obj is None:
        raise Http404(f"No such {what}.")
    return obj


def monitor_for_user(user, monitor_id, min_role: Role = Role.VIEWER) -> Monitor:
    monitor = _by_id(
        Monitor.objects.select_related("project", "model", "reference_dataset_version__dataset"),
        monitor_id,
        "monitor",
    )
    require_role(user, monitor.project, min_role)
    return monitor


def report_for_user(user, report_id) -> MonitorReport:
    report = _by_id(
        MonitorReport.objects.select_related("monitor__project", "monitor__model"), report_id, "report"
    )
    require_role(user, report.monitor.project, Role.VIEWER)
    return report


def alert_for_user(user, alert_id, min_role: Role = Role.VIEWER) -> Alert:
    alert = _by_id(Alert.objects.select_related("monitor__project", "monitor__model"), alert_id, "alert")
    require_role(user, alert.monitor.project, min_role)
    return alert


def monitors_visible_to(user) -> QuerySet[Monitor]:
    return Monitor.objects.filter(project__in=projects_visible_to(user)).select_related("project", "model")


def monitor_overview(monitor: Monitor) -> dict:
    """The badge a monitors list shows: the latest report's verdict and the live alerts."""
    latest = monitor.reports.only("id", "status", "drift_share", "created_at", "performance").first()
    live = list(monitor.alerts.exclude(status=AlertStatus.RESOLVED).values_list("kind", "status"))
    return {
        "latest": latest,
        "live_alerts": live,
        "state": (
            "alert"
            if any(s == AlertStatus.OPEN for _, s in live)
            else "acknowledged"
            if live
            else (latest.status if latest else "no_report")
        ),
    }
