"""Registry pages: thin views that check permission, call a selector or service and render.

Every page asks accounts.permissions first (through selectors.model_for_user),
so a project the user cannot see is a 404 and a too-low role a 403.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.permissions import project_for_user, projects_visible_to, role_for
from accounts.selectors import pii_columns, pii_mask_record
from core.errors import DomainError, error_status, error_text
from core.links import page_links
from core.models import Job
from datasets.models import DatasetVersion, RunDataset
from experiments.models import Artifact, Run
from experiments.selectors import run_for_user
from registry import batch_scoring, registration, selectors, services
from registry.extensions import version_sections
from registry.loading import pickle_trust
from registry.models import AliasEvent, ModelAlias, ModelVersion, RegisteredModel, VersionStatus
from training.models import TrainingRun

MODEL_SUFFIXES = tuple(registration.MODEL_EXTENSIONS)
ALL_MODELS_LIMIT = 500


def _model_url(model: RegisteredModel) -> str:
    return reverse("registry:model", args=[model.project.slug, model.name])


def _version_url(version: ModelVersion) -> str:
    return reverse("registry:version", args=[version.model.project.slug, version.model.name, version.version])


@login_required
@require_GET
def models_all(request):
    """Every registered model the user can see, across projects: latest version, its status, aliases."""
    query = request.GET.get("q", "").strip()
    models = (
        RegisteredModel.objects.filter(project__in=projects_visible_to(request.user))
        .select_related("project", "owner")
        .annotate(n_versions=Count("versions"), latest_pk=Subquery(
            ModelVersion.objects.filter(model=OuterRef("pk")).order_by("-version").values("pk")[:1]))
        .order_by("-updated_at", "project__name", "name")
    )
    if query:
        models = models.filter(Q(name__icontains=query) | Q(project__name__icontains=query))
    models = list(models[:ALL_MODELS_LIMIT])
    latest = ModelVersion.objects.in_bulk([m.latest_pk for m in models if m.latest_pk])
    aliases: dict[int, list] = {}
    for alias in ModelAlias.objects.filter(model__in=models).select_related("version").order_by("name"):
        aliases.setdefault(alias.model_id, []).append(alias)
    rows = [{"model": m, "latest": latest.get(m.latest_pk), "aliases": aliases.get(m.pk, [])} for m in models]
    return render(request, "registry/all_models.html", {
        "rows": rows, "query": query, "limit": ALL_MODELS_LIMIT, "nav": "models",
    })


@login_required
@require_GET
def run_models_panel(request, run_id):
    """The run page's "Models" panel: versions registered from the run, and its model files."""
    run = run_for_user(request.user, run_id)
    versions = list(
        ModelVersion.objects.filter(run=run).select_related("model", "artifact")
        .order_by("model__name", "-version")
    )
    registered = {v.artifact.path for v in versions}
    return render(request, "registry/_run_panel.html", {
        "run": run, "project": run.project, "versions": versions,
        "files": [{"path": p, "registered": p in registered} for p in _model_files(run)],
        "can_edit": role_for(request.user, run.project) >= Role.EDITOR,
    })


@login_required
def model_list(request, slug: str):
    project = project_for_user(request.user, slug)
    models = (
        RegisteredModel.objects.filter(project=project).select_related("owner")
        .annotate(n_versions=Count("versions"), latest=Max("versions__version"))
    )
    aliases: dict[int, list] = {}
    for alias in ModelAlias.objects.filter(model__project=project).select_related("version"):
        aliases.setdefault(alias.model_id, []).append(alias)
    rows = [{"model": m, "aliases": aliases.get(m.pk, [])} for m in models]
    return render(request, "registry/models.html", {
        "project": project, "rows": rows, "can_edit": project.user_role >= Role.EDITOR, "nav": "models",
    })


def _model_files(run: Run) -> list[str]:
    return [p for p in run.artifacts.values_list("path", flat=True) if p.lower().endswith(MODEL_SUFFIXES)]


@login_required
@require_http_methods(["GET", "POST"])
def model_register(request, slug: str):
    """Register a run's model artifact: the run and one of its stored files, never a path typed in."""
    project = project_for_user(request.user, slug, min_role=Role.EDITOR)
    run_id = request.POST.get("run") or request.GET.get("run")
    run = run_for_user(request.user, run_id) if run_id else None
    if run is not None and run.project_id != project.pk:
        raise Http404("No such run in this project.")
    form = {
        "name": request.POST.get("name", request.GET.get("name", "")),
        "artifact_path": request.POST.get("artifact_path", request.GET.get("artifact_path", "")),
        "description": request.POST.get("description", ""),
        "pii_columns": request.POST.get("pii_columns", ""),
    }
    error = None
    if request.method == "POST":
        if run is None:
            error = "Choose a run."
        else:
            pii = [c.strip() for c in form["pii_columns"].split(",") if c.strip()]
            try:
                version = registration.model_version_create(
                    project=project, model_name=form["name"].strip(), run=run, user=request.user,
                    artifact_path=form["artifact_path"], description=form["description"], pii_columns=pii,
                )
            except (ValidationError, DomainError) as exc:
                error = error_text(exc)
            else:
                messages.success(request, f"Registered {version.model.name} version {version.version}; "
                                          "its checks are running.")
                return redirect(_version_url(version))
    recent = (
        Artifact.objects.filter(run__project=project).filter(path__iregex=r"\.(skops|pkl|pickle|joblib)$")
        .select_related("run").order_by("-created_at")[:50]
    )
    return render(request, "registry/register.html", {
        "project": project, "run": run, "files": _model_files(run) if run else [], "recent": recent,
        "form": form, "error": error, "models": RegisteredModel.objects.filter(project=project),
        "nav": "models",
    })


@login_required
def model_detail(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name)
    role = model.project.user_role
    versions = list(ModelVersion.objects.filter(model=model).select_related("author", "run"))
    by_version = selectors.aliases_by_version(model)
    for version in versions:
        version.alias_names = sorted(by_version.get(version.pk, []))
    aliases = list(model.aliases.select_related("version", "updated_by"))
    return render(request, "registry/model.html", {
        "project": model.project, "model": model, "versions": versions, "aliases": aliases,
        "history": selectors.alias_history(model, limit=100),
        "ready_versions": [v for v in versions if v.status == VersionStatus.READY],
        "can_edit": role >= Role.EDITOR, "is_owner": role >= Role.OWNER, "nav": "models",
        "links": page_links("registered-model", model, role=role),
    })


@login_required
@require_POST
def alias_set(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
    alias = request.POST.get("alias", "").strip()
    try:
        number = int(request.POST.get("version", ""))
        version = ModelVersion.objects.filter(model=model, version=number).first()
        if version is None:
            raise ValidationError({"version": "No such version."})
        services.alias_set(model=model, alias=alias, version=version, user=request.user, via="ui")
    except (ValueError, ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc) if not isinstance(exc, ValueError) else "Choose a version.")
    else:
        messages.success(request, f"'{alias}' now points to version {version.version}.")
    return redirect(_model_url(model) + "#aliases")


@login_required
@require_POST
def alias_remove(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
    alias = request.POST.get("alias", "")
    try:
        services.alias_remove(model=model, alias=alias, user=request.user, via="ui")
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"Removed '{alias}'.")
    return redirect(_model_url(model) + "#aliases")


@login_required
@require_POST
def protected_aliases(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name, min_role=Role.OWNER)
    wanted = [a.strip() for a in request.POST.get("protected_aliases", "").split(",") if a.strip()]
    try:
        services.model_protected_aliases_set(model=model, aliases=wanted, user=request.user)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "Protected aliases saved.")
    return redirect(_model_url(model) + "#aliases")


def _example_inputs(version: ModelVersion) -> list[dict]:
    """One field per signature column, pre-filled from the first example row; a PII column's field
    starts empty whoever reads the page (a default is typed into a form and sent on)."""
    example = version.example or {}
    first = dict(zip(example.get("columns", []), (example.get("data") or [[]])[0], strict=False))
    first = pii_mask_record(first, pii_columns(version.columns))
    fields = []
    for column in version.columns:
        value = first.get(column["name"])
        fields.append({**column, "value": "" if value is None else value})
    return fields


@login_required
def version_detail(request, slug: str, name: str, number: int):
    model = selectors.model_for_user(request.user, slug, name)
    version = selectors.version_by_ref(model, number)
    role = model.project.user_role
    trust = pickle_trust(version) if version.is_pickle else None
    predict_url = f"/api/v1/serve/{model.project.slug}/{model.name}/{version.version}/predict"
    return render(request, "registry/version.html", {
        "project": model.project, "model": model, "version": version,
        "links": page_links("model-version", version, role=role),
        "aliases": sorted(version.aliases.values_list("name", flat=True)),
        "fields": _example_inputs(version), "trust": trust, "predict_url": predict_url,
        "metrics": sorted(version.metrics.items()), "others": model.versions.exclude(pk=version.pk),
        "can_edit": role >= Role.EDITOR, "is_owner": role >= Role.OWNER, "nav": "models",
        "pickles_on": settings.ALLOW_PICKLE_MODELS, "can_trust": request.user.is_staff,
        "try_config": {"url": predict_url, "columns": version.columns},
        "dataset_versions": DatasetVersion.objects.filter(dataset__project=model.project)
        .select_related("dataset").order_by("dataset__name", "-version")[:200],
        "batch_jobs": Job.objects.filter(kind=batch_scoring.BATCH_JOB_KIND, project=model.project,
                                         params__model_version_id=version.pk).order_by("-created_at")[:5],
        "sections": version_sections(request, version),
    })


@login_required
@require_POST
def version_batch_score(request, slug: str, name: str, number: int):
    model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
    version = selectors.version_by_ref(model, number)
    try:
        dataset_version = DatasetVersion.objects.select_related("dataset").get(
            pk=int(request.POST.get("dataset_version", "")), dataset__project=model.project)
        job = batch_scoring.batch_score_start(version=version, dataset_version=dataset_version,
                                              user=request.user)
    except (ValueError, DatasetVersion.DoesNotExist):
        messages.error(request, "Choose a dataset version of this project.")
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"Scoring {dataset_version} with v{version.version}: job #{job.pk}.")
    return redirect(_version_url(version) + "#batch")


@login_required
@require_POST
def version_trust(request, slug: str, name: str, number: int):
    """An instance administrator trusts this version's exact pickle/joblib file; its checks run again."""
    model = selectors.model_for_user(request.user, slug, name)
    version = selectors.version_by_ref(model, number)
    try:
        registration.trusted_hash_permission_check(user=request.user)
    except DomainError as exc:
        # The version page again, saying why, with the status an API client would get.
        messages.error(request, error_text(exc))
        response = version_detail(request, slug, name, number)
        response.status_code = error_status(exc)
        return response
    if request.POST.get("sha256") != version.sha256:
        messages.error(request, "Confirm by pasting the file's sha256 exactly.")
    else:
        registration.trusted_hash_add(project=model.project, sha256=version.sha256, user=request.user,
                                  note=request.POST.get("note", "")[:500])
        messages.success(request, f"Trusted sha256 {version.sha256[:12]}…; the checks are running again.")
    return redirect(_version_url(version))


@login_required
def version_lineage(request, slug: str, name: str, number: int):
    model = selectors.model_for_user(request.user, slug, name)
    version = selectors.version_by_ref(model, number)
    run = version.run
    links = list(RunDataset.objects.filter(run=run).select_related("dataset_version__dataset"))
    inputs = [link for link in links if link.direction == "input"]
    training = TrainingRun.objects.filter(run=run).first()
    trained_on = version.training_dataset_version
    if trained_on is not None and all(link.dataset_version_id != trained_on.pk for link in inputs):
        inputs.insert(0, RunDataset(run=run, dataset_version=trained_on, direction="input", role="train"))
    events = list(
        AliasEvent.objects.filter(model=model).select_related("version", "previous_version", "actor")
        .order_by("created_at", "id")
    )
    touching = [e for e in events if version.pk in (e.version_id, e.previous_version_id)]
    return render(request, "registry/lineage.html", {
        "project": model.project, "model": model, "version": version, "run": run, "inputs": inputs,
        "outputs": [link for link in links if link.direction == "output"],
        "params": sorted(run.params.values_list("key", "value")),
        "spec": json.dumps(training.spec, indent=2) if training else None,
        "aliases": sorted(version.aliases.values_list("name", flat=True)), "events": touching,
        "nav": "models",
    })


@login_required
def version_compare(request, slug: str, name: str):
    model = selectors.model_for_user(request.user, slug, name)
    versions = list(model.versions.order_by("-version"))
    a_ref, b_ref = request.GET.get("a"), request.GET.get("b")
    if not a_ref and len(versions) >= 2:
        a_ref, b_ref = versions[1].version, versions[0].version
    comparison = None
    if a_ref and b_ref:
        a, b = selectors.version_by_ref(model, a_ref), selectors.version_by_ref(model, b_ref)
        comparison = selectors.versions_compare(a, b)
    return render(request, "registry/compare.html", {
        "project": model.project, "model": model, "versions": versions, "comparison": comparison,
        "a": str(a_ref or ""), "b": str(b_ref or ""), "nav": "models",
    })
