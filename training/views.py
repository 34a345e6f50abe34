"""HTML pages for training jobs, re-runs, a run's training panel and sweeps."""

from __future__ import annotations

import json

import orjson
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.json_input import json_parse
from accounts.models import Role
from accounts.permissions import can_see_pii, project_for_user
from core import jobs
from core.api_errors import error_body, json_error, validation_fields
from core.errors import PayloadTooLarge, error_status, error_text
from datasets import services as datasets
from datasets.api.views import lineage_for_run
from datasets.models import Dataset, RunDataset
from datasets.views import _can_edit
from experiments.api.views import job_for_user
from experiments.models import EXPERIMENT_NAME_MAX_LENGTH
from experiments.selectors import run_for_user
from training import figures, sweeps
from training import services as training
from training.api.views import sweep_for_user
from training.models import Sweep, TrainingRun


class TrainingForm(forms.Form):
    experiment = forms.CharField(max_length=EXPERIMENT_NAME_MAX_LENGTH)
    dataset_version = forms.IntegerField(widget=forms.HiddenInput)
    target = forms.ChoiceField()
    task = forms.ChoiceField(choices=[("classification", "classification"), ("regression", "regression")])
    estimator = forms.ChoiceField(choices=[(n, n) for n in training.ESTIMATORS])
    features = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         help_text="None ticked: every column but the target and "
                                                   "id/timestamp/ignore columns")
    sensitive_features = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    allow_pii_features = forms.BooleanField(
        required=False, label="Train on PII columns",
        help_text="Off: columns marked PII are left out of the features. On: they are used, and the "
                  "model file can only be downloaded by those who may see PII.")
    params = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text='JSON, e.g. {"n_estimators": 100, "class_weight": {"0": 1, "1": 5}}')
    test_size = forms.FloatField(initial=0.25, min_value=0.01, max_value=0.99)
    stratify = forms.BooleanField(required=False, initial=True)
    seed = forms.IntegerField(initial=0, min_value=0)
    metrics = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                        choices=[(m, m) for ms in training.METRICS.values() for m in ms])
    sweep_space = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text='Optional sweep: JSON, e.g. {"max_depth": [2, 4, 8]}')
    sweep_strategy = forms.ChoiceField(choices=[("grid", "grid"), ("random", "random")], required=False)
    sweep_trials = forms.IntegerField(required=False, min_value=1, max_value=200, initial=10)
    sweep_parallelism = forms.IntegerField(required=False, min_value=1, max_value=16, initial=2)

    def __init__(self, *args, version=None, **kwargs):
        super().__init__(*args, **kwargs)
        names = [(c["name"], c["name"]) for c in (version.columns if version else [])]
        self.fields["target"].choices = names
        self.fields["features"].choices = names
        self.fields["sensitive_features"].choices = names


def _json_field(text: str, field: str):
    if not text.strip():
        return None
    return json_parse(text, field=field)


TARGET_NAMES = ("target", "label", "y", "class", "outcome")


def target_proposal(columns: list[dict]) -> str | None:
    """The column the training form proposes to predict: the one with role ``target``, else one
    named like a target (``target``, ``label``, ``y``, ...); None when nothing says which."""
    for column in columns:
        if column.get("role") == "target":
            return column["name"]
    by_name = {c["name"].strip().lower(): c["name"] for c in columns}
    for name in TARGET_NAMES:
        if name in by_name:
            return by_name[name]
    return None


@login_required
@require_http_methods(["GET", "POST"])
def training_new(request, slug: str):
    project = project_for_user(request.user, slug, min_role=Role.EDITOR)
    version_id = request.POST.get("dataset_version") or request.GET.get("dataset_version")
    version = datasets.dataset_version_for_user(request.user, version_id) if version_id else None
    if version is not None and version.dataset.project_id != project.pk:
        raise Http404("No such dataset version in this project.")
    initial = {}
    if version is not None:
        initial = {"dataset_version": version.pk, "target": target_proposal(version.columns),
                   "sensitive_features": [c["name"] for c in version.columns if c.get("role") == "sensitive"]}
    form = TrainingForm(request.POST or None, version=version, initial=initial)
    if request.method == "POST" and version is not None and form.is_valid():
        d = form.cleaned_data
        try:
            spec = {"dataset_version": version.pk, "target": d["target"], "features": d["features"] or None,
                    "sensitive_features": d["sensitive_features"], "task": d["task"],
                    "allow_pii_features": d["allow_pii_features"],
                    "estimator": d["estimator"], "params": _json_field(d["params"], "params") or {},
                    "split": {"test_size": d["test_size"], "stratify": d["stratify"], "seed": d["seed"]},
                    "metrics": d["metrics"] or None}
            space = _json_field(d["sweep_space"], "sweep_space")
            if space is not None:
                search = {"strategy": d["sweep_strategy"] or "grid", "space": space}
                if search["strategy"] == "random":
                    search["n_trials"] = d["sweep_trials"] or 10
                sweep = sweeps.sweep_create(project=project, experiment=d["experiment"], spec=spec,
                                            search=search, user=request.user,
                                            parallelism=d["sweep_parallelism"] or 2)
                return redirect("training:sweep", sweep_id=sweep.pk)
            job = training.training_job_submit(project=project, experiment=d["experiment"], spec=spec,
                                               user=request.user)
        except ValidationError as exc:
            form.add_error(None, error_text(exc))
        else:
            return redirect("training:training-job", job_id=job.pk)
    versions = [v for d in Dataset.objects.filter(project=project).prefetch_related("versions")
                for v in d.versions.all()]
    return render(request, "training/new.html", {
        "project": project, "form": form, "version": version, "versions": versions,
        "estimators": training.ESTIMATORS, "nav": "projects",
    })


@login_required
@require_GET
def training_job(request, job_id: int):
    job = job_for_user(request.user, job_id)
    if job.kind != "training":
        return redirect("experiments:job", job_id=job.pk)
    if request.htmx:
        return render(request, "training/_job_panel.html", {"job": job})
    result = job.result if isinstance(job.result, dict) else {}
    return render(request, "training/job.html", {
        "job": job, "project": job.project, "spec_json": json.dumps(job.params.get("spec"), indent=2),
        "pii_left_out": result.get("pii_left_out", job.params.get("pii_left_out")),
        "pii_features": result.get("pii_features"),
        "can_edit": _can_edit(request.user, job.project), "nav": "projects",
    })


@login_required
@require_POST
def training_job_cancel(request, job_id: int):
    job = job_for_user(request.user, job_id, min_role=Role.EDITOR)
    try:
        jobs.job_cancel(job=job)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    return redirect("training:training-job", job_id=job.pk)


@login_required
@require_POST
def run_rerun(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
    try:
        job = training.training_rerun(run=run, user=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect("experiments:run", run_id=run.pk)
    return redirect("training:training-job", job_id=job.pk)


def _json_list(text: str | None) -> list:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


@login_required
@require_GET
def run_plot(request, run_id, path: str):
    """A run's stored Plotly figure, cleaned of every external source, for the run page to draw."""
    run = run_for_user(request.user, run_id)
    try:
        figure = figures.figure_for_display(run=run, path=path, user=request.user)
    except ValidationError as exc:
        return JsonResponse(error_body("invalid", error_text(exc), validation_fields(exc)), status=400)
    except PayloadTooLarge as exc:
        return json_error(error_status(exc), exc.code, exc.message)
    # NaN (which Python's json may have stored) goes out as null, as JSON has no NaN.
    return HttpResponse(orjson.dumps(figure), content_type="application/json")


@login_required
@require_GET
def run_panel(request, run_id):
    """Lineage, the training spec and its plots, for the run page to load into itself."""
    run = run_for_user(request.user, run_id)
    record = TrainingRun.objects.filter(run=run).select_related("rerun_of").first()
    plots = []
    if record is not None:
        found = run.artifacts.filter(path__startswith="plots/", path__endswith=".json")
        if not can_see_pii(request.user, run.project):
            found = found.filter(pii=False)
        plots = list(found.values_list("path", flat=True))
    tags = dict(run.tags.filter(key__in=["steward.pii_left_out", "steward.pii_features"])
                .values_list("key", "value"))
    return render(request, "training/_run_panel.html", {
        "run": run, "lineage": lineage_for_run(run), "record": record,
        "pii_left_out": _json_list(tags.get("steward.pii_left_out")),
        "pii_features": _json_list(tags.get("steward.pii_features")),
        "spec_json": json.dumps(record.spec, indent=2) if record else "", "plots": plots,
        "can_edit": _can_edit(request.user, run.project),
        "has_links": RunDataset.objects.filter(run=run).exists(),
    })


@login_required
@require_GET
def sweep_list(request, slug: str):
    project = project_for_user(request.user, slug)
    rows = [{"sweep": s, "progress": sweeps.sweep_progress(s)}
            for s in Sweep.objects.filter(project=project).select_related("experiment")[:100]]
    return render(request, "training/sweeps.html", {"project": project, "rows": rows, "nav": "projects"})


@login_required
@require_http_methods(["GET", "POST"])
def sweep_detail(request, sweep_id: int):
    sweep = sweep_for_user(request.user, sweep_id)
    if request.method == "GET" and sweep.status == "running":
        sweeps.sweep_advance(sweep_id=sweep.pk)  # picks up trials whose jobs the reaper ended
        sweep.refresh_from_db()
    if request.method == "POST":
        sweep = sweep_for_user(request.user, sweep_id, min_role=Role.EDITOR)
        try:
            sweeps.sweep_cancel(sweep=sweep)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        return redirect("training:sweep", sweep_id=sweep.pk)
    context = {"sweep": sweep, "project": sweep.project, "progress": sweeps.sweep_progress(sweep),
               "board": sweeps.sweep_leaderboard(sweep), "can_edit": _can_edit(request.user, sweep.project),
               "nav": "projects"}
    if request.htmx:
        return render(request, "training/_sweep_board.html", context)
    return render(request, "training/sweep.html", context)

