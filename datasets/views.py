"""HTML pages for datasets and their versions: thin views over the dataset services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from accounts.permissions import project_for_user, role_for
from accounts.selectors import pii_hidden
from core.errors import error_text
from core.links import page_links
from datasets import services as datasets
from datasets.api.views import (
    lineage_for_version,
    pii_hidden_for,
    profile_for,
    rule_config_shown,
    validation_for,
)
from datasets.models import ColumnRole, Dataset


def _can_edit(user, project) -> bool:
    role = role_for(user, project)
    return role is not None and role >= Role.EDITOR


class UploadForm(forms.Form):
    name = forms.CharField(max_length=200)
    file = forms.FileField()
    delimiter = forms.CharField(max_length=2, required=False, help_text="Sniffed when empty")
    encoding = forms.CharField(max_length=40, required=False, help_text="utf-8 when empty")


@login_required
@require_http_methods(["GET", "POST"])
def dataset_list(request, slug: str):
    project = project_for_user(request.user, slug)
    can_edit = _can_edit(request.user, project)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            delimiter = form.cleaned_data["delimiter"]
            try:
                created = datasets.dataset_version_create(
                    project=project, name=form.cleaned_data["name"], stream=upload, user=request.user,
                    content_length=upload.size, filename=upload.name,
                    delimiter=("\t" if delimiter == "\\t" else delimiter) or None,
                    encoding=form.cleaned_data["encoding"] or None,
                )
            except ValidationError as exc:
                form.add_error(None, error_text(exc))
            else:
                if not created.created:
                    messages.info(request, f"Identical content is already version {created.version.version}.")
                return redirect("datasets:version", version_id=created.version.pk)
    rows = []
    for d in Dataset.objects.filter(project=project).prefetch_related("versions"):
        versions = sorted(d.versions.all(), key=lambda v: -v.version)
        rows.append({"dataset": d, "latest": versions[0] if versions else None, "count": len(versions)})
    return render(request, "datasets/list.html", {
        "project": project, "rows": rows, "form": form, "can_edit": can_edit, "nav": "projects",
        "links": page_links("datasets", project, role=role_for(request.user, project)),
    })


class RuleForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k, k.replace("_", " ")) for k in
                                      ("not_null", "range", "allowed_values", "unique", "schema_unchanged")])
    column = forms.CharField(required=False, max_length=500)
    minimum = forms.FloatField(required=False, label="Min")
    maximum = forms.FloatField(required=False, label="Max")
    values = forms.CharField(required=False, help_text="Allowed values, comma separated")


@login_required
@require_http_methods(["GET", "POST"])
def dataset_detail(request, slug: str, name: str):
    dataset = datasets.dataset_for_user(request.user, slug, name)
    project = dataset.project
    project.user_role = role_for(request.user, project)
    form = RuleForm(request.POST or None)
    if request.method == "POST":
        datasets.dataset_for_user(request.user, slug, name, min_role=Role.EDITOR)
        if "delete_rule" in request.POST:
            rule = dataset.rules.filter(pk=request.POST.get("delete_rule")).first()
            if rule is not None:
                datasets.validation_rule_delete(rule=rule)
            return redirect("datasets:dataset", slug=slug, name=name)
        if form.is_valid():
            data = form.cleaned_data
            config = {}
            if data["kind"] == "range":
                config = {"min": data["minimum"], "max": data["maximum"]}
            elif data["kind"] == "allowed_values":
                config = {"values": [x.strip() for x in data["values"].split(",") if x.strip()]}
            try:
                datasets.validation_rule_create(dataset=dataset, kind=data["kind"], column=data["column"],
                                                config=config, user=request.user)
            except ValidationError as exc:
                form.add_error(None, error_text(exc))
            else:
                return redirect("datasets:dataset", slug=slug, name=name)
    versions = dataset.versions.select_related("created_by", "profile_job", "validation_job")
    rules = list(dataset.rules.all())
    hidden = pii_hidden_for(request.user, dataset)
    for rule in rules:
        rule.shown_config = rule_config_shown(rule.config, rule.column, hidden)
    return render(request, "datasets/dataset.html", {
        "project": project, "dataset": dataset, "versions": versions, "rules": rules,
        "form": form, "can_edit": _can_edit(request.user, project), "nav": "projects",
    })


@login_required
@require_http_methods(["GET", "POST"])
def version_detail(request, version_id: int):
    version = datasets.dataset_version_for_user(request.user, version_id)
    project = version.dataset.project
    can_edit = _can_edit(request.user, project)
    if request.method == "POST":
        datasets.dataset_version_for_user(request.user, version_id, min_role=Role.EDITOR)
        action = request.POST.get("action")
        try:
            if action == "columns":
                changes = {}
                for col in version.columns:
                    role = request.POST.get(f"role:{col['name']}")
                    if role is not None:
                        changes[col["name"]] = {"role": role, "pii": f"pii:{col['name']}" in request.POST}
                datasets.dataset_columns_update(version=version, changes=changes)
                messages.success(request, "Column roles saved.")
            elif action == "profile":
                datasets.dataset_profile_start(version=version, user=request.user)
            elif action == "validate":
                datasets.dataset_validate_start(version=version, user=request.user)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        return redirect("datasets:version", version_id=version.pk)
    hidden = pii_hidden(request.user, project, version.columns)
    try:
        preview = datasets.dataset_version_preview(version=version, user=request.user, rows=20)
    except (OSError, ValueError) as exc:
        preview = {"columns": [], "rows": [], "hidden_columns": [], "error": str(exc)}
    profile = profile_for(version, hidden)
    version.refresh_from_db(fields=["profile_job", "validation_job"])
    return render(request, "datasets/version.html", {
        "project": project, "dataset": version.dataset, "version": version, "can_edit": can_edit,
        "roles": ColumnRole.values, "preview": preview, "profile": profile,
        "profile_by_name": {c["name"]: c for c in (profile or {}).get("columns", [])},
        "validation": validation_for(version, hidden), "lineage": lineage_for_version(version),
        "profile_job": version.profile_job, "validation_job": version.validation_job, "nav": "projects",
        "links": page_links("dataset-version", version, role=role_for(request.user, project)),
    })
