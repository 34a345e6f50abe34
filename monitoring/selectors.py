"""Monitoring reads with permission: 404 for what the user cannot see."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Role
from accounts.permissions import projects_visible_to, require_role
from accounts.selectors import pii_hidden, pii_mask_record
from core.errors import NotFound
from datasets.models import DatasetVersion
from monitoring.models import Alert, AlertStatus, Monitor, MonitorReport
from registry.models import ModelVersion


def _by_id(queryset: QuerySet, pk, what: str):
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        pk = 0
    # Ids beyond a bigint name nothing (and would overflow the query).
    obj = queryset.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if obj is None:
        raise NotFound(f"No such {what}.")
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


def monitor_pii_hidden(user, monitor: Monitor) -> frozenset[str]:
    """The features of ``monitor`` whose values ``user`` may not see: PII columns of any version of
    its model or of a reference dataset it compared against (accounts.selectors.pii_hidden)."""
    signatures = ModelVersion.objects.filter(model_id=monitor.model_id).values_list("signature", flat=True)
    references = DatasetVersion.objects.filter(
        pk__in={monitor.reference_dataset_version_id,
                *monitor.reports.values_list("reference_dataset_version_id", flat=True)} - {None}
    ).values_list("columns", flat=True)
    return pii_hidden(user, monitor.project, *((s or {}).get("columns", []) for s in signatures), *references)


def histograms_shown(histograms: dict, hidden: frozenset[str]) -> dict:
    """A report's histograms; a hidden feature's (its bins are its values) only says it is hidden."""
    return pii_mask_record(histograms, hidden, mask={"hidden": True})
