"""Pages: a project's trash, and the forms that move runs and experiments into and out of it."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import project_for_user
from core.errors import Conflict, error_text
from experiments import trash
from experiments.models import Experiment, Lifecycle, Run
from experiments.selectors import run_for_user


def _experiment(user, slug: str, experiment_id: int, min_role: Role) -> Experiment:
    project = project_for_user(user, slug, min_role=min_role)
    experiment = Experiment.objects.filter(project=project, pk=experiment_id).first()
    if experiment is None:
        raise Http404("No such experiment in this project.")
    return experiment


@login_required
def trash_page(request, slug):
    project = project_for_user(request.user, slug)
    retention = dt.timedelta(days=settings.TRASH_RETENTION_DAYS)
    experiments = list(Experiment.objects.filter(project=project, lifecycle=Lifecycle.DELETED)
                       .order_by("-deleted_at"))
    runs = list(Run.objects.filter(project=project, lifecycle=Lifecycle.DELETED)
                .select_related("experiment").order_by("-deleted_at")[:500])
    for item in (*experiments, *runs):
        item.purge_after = item.deleted_at + retention
    return render(request, "experiments/trash.html", {
        "project": project, "experiments": experiments, "runs": runs,
        "retention_days": settings.TRASH_RETENTION_DAYS,
        "can_edit": project.user_role >= Role.EDITOR, "nav": "projects",
    })


@login_required
@require_POST
def run_delete(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR, allow_deleted=True)
    trash.run_delete(run=run, user=request.user)
    messages.success(request, f"Run “{run.name or str(run.pk)[:8]}” moved to the trash. "
                              f"It is purged after {settings.TRASH_RETENTION_DAYS} days unless restored.")
    return redirect("experiments:experiment", slug=run.project.slug, experiment_id=run.experiment_id)


@login_required
@require_POST
def run_restore(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR, allow_deleted=True)
    try:
        trash.run_restore(run=run, user=request.user)
    except Conflict as exc:
        messages.error(request, error_text(exc))
        return redirect("experiments:trash", slug=run.project.slug)
    messages.success(request, f"Run “{run.name or str(run.pk)[:8]}” restored.")
    return redirect(reverse("experiments:run", args=[run.pk]))


@login_required
@require_POST
def experiment_delete(request, slug, experiment_id):
    experiment = _experiment(request.user, slug, experiment_id, Role.EDITOR)
    trash.experiment_delete(experiment=experiment, user=request.user)
    messages.success(request, f"Experiment “{experiment.name}” and its runs moved to the trash.")
    return redirect("experiments:project", slug=slug)


@login_required
@require_POST
def experiment_restore(request, slug, experiment_id):
    experiment = _experiment(request.user, slug, experiment_id, Role.EDITOR)
    trash.experiment_restore(experiment=experiment, user=request.user)
    messages.success(request, f"Experiment “{experiment.name}” restored with the runs deleted with it.")
    return redirect("experiments:experiment", slug=slug, experiment_id=experiment.pk)
