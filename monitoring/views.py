"""Monitor pages: thin views that check permission, read through selectors, call a service."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Role
from accounts.permissions import project_for_user, projects_visible_to, role_for
from core.errors import error_text
from datasets.models import DatasetVersion
from monitoring import selectors, services
from monitoring.health import health_series
from monitoring.models import RetrainData
from registry.models import ModelAlias, RegisteredModel

HEATMAP_REPORTS = 30
HEALTH_HOURS = 6


@login_required
@require_GET
def monitor_index(request):
    monitors = selectors.monitors_visible_to(request.user)
    rows = [{"monitor": m, **selectors.monitor_overview(m)} for m in monitors]
    editable = [
        p
        for p in projects_visible_to(request.user).distinct()
        if (role_for(request.user, p) or 0) >= Role.EDITOR
    ]
    return render(request, "monitoring/index.html", {"rows": rows, "nav": "monitors", "editable": editable})


def _chart_data(monitor, selected, hidden: frozenset[str]) -> dict:
    reports = list(monitor.reports.order_by("-created_at", "-id")[:HEATMAP_REPORTS])[::-1]
    judged = [r for r in reports if r.features]
    features = sorted({f["feature"] for r in judged for f in r.features})
    heat = [
        [next((f["psi"] for f in r.features if f["feature"] == name), None) for r in judged]
        for name in features
    ]
    performance = []
    for r in reports:
        perf = r.performance or {}
        if perf.get("metrics"):
            performance.append({"time": r.created_at.isoformat(), **perf["metrics"]})
    alerts = [
        {"time": a.opened_at.isoformat(), "kind": a.kind, "status": a.status, "message": a.message[:200]}
        for a in monitor.alerts.order_by("opened_at")[:200]
    ]
    return {
        "drift": [
            {"time": r.created_at.isoformat(), "share": r.drift_share, "status": r.status, "id": r.pk}
            for r in reports
        ],
        "heatmap": {"features": features, "reports": [r.created_at.isoformat() for r in judged], "psi": heat},
        "histograms": selectors.histograms_shown(selected.histograms, hidden) if selected else {},
        "drifted": [f["feature"] for f in selected.features if f["drifted"]] if selected else [],
        "performance": performance,
        "performance_over_time": (selected.performance or {}).get("over_time", []) if selected else [],
        "alerts": alerts,
        "health": health_series(monitor, since=timezone.now() - dt.timedelta(hours=HEALTH_HOURS)),
    }


@login_required
@require_GET
def monitor_detail(request, monitor_id: int):
    monitor = selectors.monitor_for_user(request.user, monitor_id)
    selected = None
    report_id = request.GET.get("report")
    if report_id:
        selected = selectors.report_for_user(request.user, report_id)
        if selected.monitor_id != monitor.pk:
            selected = None
    if selected is None:
        selected = monitor.reports.first()
    alias = (
        ModelAlias.objects.filter(model=monitor.model, name=monitor.alias).select_related("version").first()
    )
    role = role_for(request.user, monitor.project)
    return render(
        request,
        "monitoring/monitor.html",
        {
            "monitor": monitor,
            "project": monitor.project,
            "nav": "monitors",
            "alias": alias,
            "report": selected,
            "reports": monitor.reports.all()[:20],
            "alerts": monitor.alerts.select_related("acknowledged_by")[:50],
            "retrainings": monitor.retrainings.select_related(
                "version", "job", "dataset_version__dataset"
            )[:10],
            "can_edit": role is not None and role >= Role.EDITOR,
            "charts": _chart_data(monitor, selected, selectors.monitor_pii_hidden(request.user, monitor)),
            "thresholds": {n: monitor.threshold(n) for n in sorted(services.DEFAULT_THRESHOLDS)},
        },
    )


@login_required
@require_POST
def monitor_run(request, monitor_id: int):
    monitor = selectors.monitor_for_user(request.user, monitor_id, min_role=Role.EDITOR)
    job = services.monitor_run_start(monitor=monitor, user=request.user)
    messages.info(request, "The drift and performance report is queued.")
    return redirect(reverse("experiments:job", args=[job.pk]))


@login_required
@require_POST
def alert_action(request, alert_id: int, action: str):
    alert = selectors.alert_for_user(request.user, alert_id, min_role=Role.EDITOR)
    try:
        if action == "acknowledge":
            services.alert_acknowledge(alert=alert, user=request.user)
        elif action == "resolve":
            services.alert_resolve(alert=alert, user=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    return redirect(reverse("monitoring:monitor", args=[alert.monitor_id]))


@login_required
def monitor_new(request, slug: str):
    project = project_for_user(request.user, slug, min_role=Role.EDITOR)
    aliases = ModelAlias.objects.filter(model__project=project).select_related("model", "version")
    datasets = (
        DatasetVersion.objects.filter(dataset__project=project)
        .select_related("dataset")
        .order_by("dataset__name", "-version")[:200]
    )
    form = {
        "target": "",
        "schedule_minutes": "",
        "window_hours": "",
        "alert_emails": "",
        "reference": "",
        "retrain_data": RetrainData.NEWEST_DATASET_VERSION,
    }
    if request.method == "POST":
        form = {k: request.POST.get(k, "").strip() for k in form}
        model_name, _, alias = form["target"].partition("@")
        reference = None
        try:
            if form["reference"]:
                reference = DatasetVersion.objects.filter(
                    pk=int(form["reference"]), dataset__project=project
                ).first()
            monitor = services.monitor_create(
                project=project,
                model_name=model_name,
                alias=alias,
                user=request.user,
                reference_dataset_version=reference,
                schedule_minutes=int(form["schedule_minutes"]) if form["schedule_minutes"] else None,
                window_hours=int(form["window_hours"]) if form["window_hours"] else None,
                alert_emails=[e.strip() for e in form["alert_emails"].split(",") if e.strip()],
                retrain_on_alert=request.POST.get("retrain_on_alert") == "on",
                retrain_data=form["retrain_data"],
            )
        except ValueError:
            messages.error(request, "Schedule and window are whole numbers.")
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            return redirect(reverse("monitoring:monitor", args=[monitor.pk]))
    return render(
        request,
        "monitoring/new.html",
        {
            "project": project,
            "aliases": aliases,
            "datasets": datasets,
            "form": form,
            "nav": "monitors",
            "models": RegisteredModel.objects.filter(project=project),
            "retrain_data_choices": RetrainData.choices,
        },
    )
