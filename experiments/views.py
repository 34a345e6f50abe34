"""HTML pages: thin views that check permission, call a selector or service and render.

Every page asks accounts.permissions (or selectors.run_for_user) first, so a
project the user cannot see is a 404 and a too-low role a 403.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from urllib.parse import quote

import orjson
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, Sum
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services as account_services
from accounts.forms import ProjectCreateForm, form_add_service_errors
from accounts.json_input import json_parse
from accounts.models import Role
from accounts.permissions import (
    project_create_allowed,
    project_create_check,
    project_for_user,
    projects_visible_to,
    role_for,
)
from core import jobs
from core import validation as v
from core.errors import Conflict, PermissionDenied, error_text
from core.links import page_links
from core.models import Job
from experiments import artifacts, services, trash
from experiments.api.views import job_for_user
from experiments.forms import ExperimentCreateForm, NotesForm, TagDeleteForm, TagForm
from experiments.models import Experiment, LatestMetric, Lifecycle, MetricRollup, Run, RunStatus
from experiments.search import runs_from_rows, runs_search_count, runs_search_rows
from experiments.selectors import metric_history, run_for_user, runs_with_details
from experiments.templatetags import steward_ui as ui

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
DEFAULT_METRIC_COLUMNS = 6
DEFAULT_PARAM_COLUMNS = 4
LEADERBOARD_SIZE = 50
LEADERBOARD_KEY_RUNS = 500
COMPARE_MIN, COMPARE_MAX = 2, 20
COLUMNS_COOKIE_MAX = 3000
CHART_MAX_POINTS = 1500
# The run page carries the histories of its first charts in the HTML, so they draw without a
# request each (a cold page with a dozen charts draws in well under a second); the rest, and every
# later update, come from the history API. The same number of charts as charts.js loads at once.
INLINE_CHARTS = 12
# How often an open page of a running run asks for its new metrics and status.
RUN_POLL_MS = 2000

TEXT_PREVIEW_BYTES = 64 * 1024
CSV_PREVIEW_BYTES = 512 * 1024
CSV_PREVIEW_ROWS = 200
TEXT_EXTENSIONS = {".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".sh", ".html",
                   ".xml", ".jsonl", ".r", ".sql", ".ipynb"}
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".bmp"}
SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


# --- Projects ---------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def home(request):
    form = ProjectCreateForm(request.POST or None)
    can_create = project_create_allowed(request.user)
    if request.method == "POST":
        project_create_check(request.user)
    if request.method == "POST" and form.is_valid():
        try:
            project = account_services.project_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form_add_service_errors(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created.")
            return redirect("experiments:project", slug=project.slug)
    projects = (
        projects_visible_to(request.user).distinct()
        .annotate(n_experiments=Count("experiments", distinct=True))
    )
    roles = dict(
        request.user.memberships.values_list("project_id", "role")
    )
    rows = [{"project": p, "role": Role(roles[p.pk]).label if p.pk in roles else "admin"} for p in projects]
    return render(request, "experiments/projects.html", {
        "rows": rows, "form": form, "can_create": can_create, "nav": "projects",
    })


@login_required
@require_http_methods(["GET", "POST"])
def project_detail(request, slug: str):
    project = project_for_user(request.user, slug)
    form = ExperimentCreateForm(request.POST or None)
    if request.method == "POST":
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        if form.is_valid():
            try:
                experiment = services.experiment_create(
                    project=project, user=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form_add_service_errors(form, exc)
            else:
                messages.success(request, f"Experiment “{experiment.name}” created.")
                return redirect("experiments:experiment", slug=slug, experiment_id=experiment.pk)
    experiments = (
        Experiment.objects.filter(project=project, lifecycle=Lifecycle.ACTIVE)
        .annotate(n_runs=Count("runs", filter=Q(runs__lifecycle=Lifecycle.ACTIVE)),
                  last_run=Max("runs__start_time", filter=Q(runs__lifecycle=Lifecycle.ACTIVE)))
        .order_by("name")
    )
    recent_jobs = Job.objects.filter(project=project).order_by("-created_at")[:8]
    return render(request, "experiments/project.html", {
        "project": project, "experiments": experiments, "form": form, "recent_jobs": recent_jobs,
        "links": page_links("project", project, role=project.user_role),
        "can_edit": project.user_role >= Role.EDITOR, "is_owner": project.user_role >= Role.OWNER,
        "nav": "projects",
    })


# --- Experiment: runs table and leaderboard ---------------------------------------------------------


def _quoted(key: str) -> str:
    return key if SIMPLE_KEY.fullmatch(key) else "`" + key.replace("`", "") + "`"


def _column_id(kind: str, key: str) -> str:
    return f"{kind}.{key}"


def _sort_expr(kind: str, key: str) -> str:
    return f"{kind}.{_quoted(key)}"


def _sort_link(request, expr: str | None, current: str) -> dict:
    """Where a column header's link goes: sort by it, or flip its direction if it is the sort."""
    if expr is None:
        return {"url": None, "state": ""}
    field, _, direction = current.rpartition(" ") if " " in current else (current, "", "")
    state = ""
    if field == expr:
        state = "desc" if direction.upper() == "DESC" else "asc"
    new_direction = "ASC" if state == "desc" else "DESC"
    params = request.GET.copy()
    params.pop("page_token", None)
    params["order_by"] = f"{expr} {new_direction}"
    return {"url": "?" + params.urlencode(), "state": state}


def _display_cells(row: dict, columns: list[dict]) -> None:
    """The chosen columns' values of one runs-table row, formatted for display."""
    cells = []
    for column in columns:
        value = row[column["kind"]].get(column["key"])
        if value is None:
            cells.append(("—", "muted"))
        elif column["kind"] == "metrics":
            cells.append((ui.metric(value), "num"))
        else:
            cells.append((ui.shorten(str(value), 80), ""))
    row["cells"] = cells


def _run_rows(runs) -> list[dict]:
    """Each run with its params, latest metrics and tags as dicts (from ``runs_with_details``)."""
    rows = []
    for run in runs:
        rows.append({
            "run": run,
            "author": run.author,
            "params": run.details.params,
            "metrics": {key: v.float_out(m[0]) for key, m in run.details.metrics.items()},
            "tags": run.details.tags,
        })
    return rows


@login_required
@require_GET
def experiment_detail(request, slug: str, experiment_id: int):
    project = project_for_user(request.user, slug)
    experiment = get_object_or_404(Experiment, project=project, pk=experiment_id)
    if request.GET.get("tab") == "leaderboard":
        return _leaderboard(request, project, experiment)

    filter_string = request.GET.get("filter", "").strip()
    order_by = request.GET.get("order_by", "").strip()
    page_token = request.GET.get("page_token") or None
    try:
        page_size = int(request.GET.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        page_size = DEFAULT_PAGE_SIZE
    if page_size not in PAGE_SIZES:
        page_size = DEFAULT_PAGE_SIZE

    error = None
    runs, next_token = [], None
    try:
        found, next_token = runs_search_rows(
            project=project, experiment_ids=[experiment.pk], filter_string=filter_string,
            order_by=[order_by] if order_by else None, max_results=page_size, page_token=page_token,
            with_names=False,
        )
        runs = runs_from_rows(found, project=project)
    except ValidationError as exc:
        error = error_text(exc)
    rows = _run_rows(runs)

    param_keys = sorted({k for r in rows for k in r["params"]})
    metric_keys = sorted({k for r in rows for k in r["metrics"]})
    tag_keys = sorted({k for r in rows for k in r["tags"] if not k.startswith("mlflow.")})
    chosen = request.GET.getlist("cols")
    cookie = _columns_cookie(request.user, experiment)
    remembered = request.COOKIES.get(cookie)
    if request.GET.get("cols_set"):
        chosen_set = set(chosen)
    elif remembered is not None:
        chosen_set = {c for c in remembered.split(",") if c}
    else:
        chosen_set = {_column_id("metrics", k) for k in metric_keys[:DEFAULT_METRIC_COLUMNS]}
        chosen_set |= {_column_id("params", k) for k in param_keys[:DEFAULT_PARAM_COLUMNS]}
    # A chosen column stays offered even when no run on this page has it.
    offered = {"params": set(param_keys), "metrics": set(metric_keys), "tags": set(tag_keys)}
    for col in chosen_set:
        kind, _, key = col.partition(".")
        if kind in offered and key:
            offered[kind].add(key)
    metric_keys, param_keys, tag_keys = (sorted(offered[k]) for k in ("metrics", "params", "tags"))
    columns = []
    for kind, keys in (("metrics", metric_keys), ("params", param_keys), ("tags", tag_keys)):
        for key in keys:
            col = _column_id(kind, key)
            if col in chosen_set:
                columns.append({"id": col, "kind": kind, "key": key, "sort": _sort_expr(kind, key)})
    chooser = [
        (label, kind, [{"id": _column_id(kind, k), "key": k, "checked": _column_id(kind, k) in chosen_set}
                       for k in keys])
        for label, kind, keys in (("Metrics", "metrics", metric_keys), ("Params", "params", param_keys),
                                  ("Tags", "tags", tag_keys))
    ]
    for row in rows:
        _display_cells(row, columns)
    for column in columns:
        column.update(_sort_link(request, column["sort"], order_by))
    attribute_columns = [
        {"label": label, **_sort_link(request, expr, order_by)}
        for label, expr in (("Name", "attributes.run_name"), ("Status", "attributes.status"),
                            ("Started", "attributes.start_time"), ("Duration", None), ("Author", None))
    ]
    next_params = request.GET.copy()
    next_params["page_token"] = next_token or ""
    first_params = request.GET.copy()
    first_params.pop("page_token", None)
    matching = None
    if filter_string and error is None:
        matching = runs_search_count(
            project=project, experiment_ids=[experiment.pk], filter_string=filter_string)
    response = render(request, "experiments/experiment.html", {
        "project": project, "experiment": experiment, "tab": "runs", "rows": rows, "columns": columns,
        "matching": matching,
        "attribute_columns": attribute_columns, "chooser": chooser, "error": error,
        "filter": filter_string, "order_by": order_by, "page_size": page_size, "page_sizes": PAGE_SIZES,
        "page_token": page_token, "next_url": "?" + next_params.urlencode() if next_token else None,
        "first_url": "?" + first_params.urlencode(), "chosen": sorted(chosen_set),
        "total_runs": Run.objects.filter(experiment=experiment, lifecycle=Lifecycle.ACTIVE).count(),
        "nav": "projects", "compare_max": COMPARE_MAX, "can_edit": project.user_role >= Role.EDITOR,
    })
    if request.GET.get("cols_set"):
        # The chosen columns are this user's for this experiment until they choose again.
        value = ",".join(sorted(chosen_set))
        if len(value) <= COLUMNS_COOKIE_MAX:
            response.set_cookie(cookie, value, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                                secure=request.is_secure())
    return response


def _columns_cookie(user, experiment) -> str:
    return f"stw_cols_{user.pk}_{experiment.pk}"


def primary_metric(metric_keys) -> str:
    """The metric a page shows first: the first that is about the model, not the machine (system/)."""
    keys = sorted(metric_keys)
    return next((k for k in keys if not k.startswith("system/")), keys[0] if keys else "")


def _leaderboard(request, project, experiment):
    # Keys of the most recent runs: a DISTINCT over every run's metrics costs ~10x more at 10,000 runs.
    recent = (
        Run.objects.filter(experiment=experiment, lifecycle=Lifecycle.ACTIVE)
        .order_by("-start_time").values("pk")[:LEADERBOARD_KEY_RUNS]
    )
    metric_keys = sorted(
        LatestMetric.objects.filter(run_id__in=recent).order_by().values_list("key", flat=True).distinct()
    )
    if request.GET.get("metric") and request.GET["metric"] not in metric_keys:
        metric_keys.append(request.GET["metric"])
    key = request.GET.get("metric") or primary_metric(metric_keys)
    goal = "min" if request.GET.get("goal") == "min" else "max"
    filter_string = request.GET.get("filter", "").strip()
    error = None
    rows = []
    if key:
        clause = f"metrics.{_quoted(key)} {'ASC' if goal == 'min' else 'DESC'}"
        try:
            found, _ = runs_search_rows(
                project=project, experiment_ids=[experiment.pk], filter_string=filter_string,
                order_by=[clause], max_results=LEADERBOARD_SIZE, with_names=False,
            )
        except ValidationError as exc:
            error = error_text(exc)
        else:
            rows = [r for r in _run_rows(runs_from_rows(found, project=project))
                    if r["metrics"].get(key) is not None]
    param_keys = sorted({k for r in rows for k in r["params"]})[:6]
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        row["value"] = row["metrics"].get(key)
        row["param_cells"] = [row["params"].get(k) for k in param_keys]
    return render(request, "experiments/leaderboard.html", {
        "project": project, "experiment": experiment, "tab": "leaderboard", "rows": rows,
        "metric_keys": metric_keys, "metric": key, "goal": goal, "filter": filter_string,
        "param_keys": param_keys, "error": error, "nav": "projects",
        "total_runs": Run.objects.filter(experiment=experiment, lifecycle=Lifecycle.ACTIVE).count(),
    })


# --- Run page ---------------------------------------------------------------------------------------


def _latest_summary_job(run):
    return Job.objects.filter(kind="run_summary", params__run_id=str(run.pk)).order_by("-created_at").first()


def _run_metrics(run) -> list[dict]:
    """Each metric's latest value, step and number of points (from the rollups, not the points)."""
    counts = dict(
        MetricRollup.objects.filter(run=run).order_by().values("key").annotate(n=Sum("count"))
        .values_list("key", "n")
    )
    return [
        {"key": key, "value": v.float_out(value), "step": step, "timestamp": timestamp,
         "count": int(counts.get(key) or 1)}
        for key, value, step, timestamp in run.latest_metrics.order_by("key").values_list(
            "key", "value", "step", "timestamp")
    ]


def _elapsed(run):
    """A finished run's duration; a running run's time so far."""
    if run.end_time is None and run.status == RunStatus.RUNNING:
        return timezone.now() - run.start_time
    return run.duration


def _run_state(run, metrics: list[dict]) -> dict:
    """What the run page shows that changes while a run is running (also its live JSON)."""
    return {
        "status": run.status, "active": run.status == RunStatus.RUNNING,
        "duration": ui.duration(_elapsed(run)),
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "metrics": [
            {"key": m["key"], "display": ui.metric(m["value"]), "step": m["step"], "count": m["count"],
             "timestamp": m["timestamp"]}
            for m in metrics
        ],
    }


def _inline_histories(run: Run, keys: list[str]) -> dict[str, dict]:
    """The history API's answers for these keys, as the run page's charts ask for them."""
    return {
        key: orjson.loads(b"".join(metric_history(run=run, key=key, max_points=CHART_MAX_POINTS).chunks))
        for key in keys
    }


@login_required
@require_GET
def run_detail(request, run_id):
    run = run_for_user(request.user, run_id)
    role = role_for(request.user, run.project)
    params = sorted(run.params.values_list("key", "value"))
    metrics = _run_metrics(run)
    charted_keys = [m["key"] for m in metrics if m["count"] > 1]
    tags = sorted(run.tags.values_list("key", "value"))
    entries = _tree_entries(run, "")
    return render(request, "experiments/run.html", {
        "run": run, "project": run.project, "experiment": run.experiment,
        "params": params, "metrics": metrics, "tags": tags, "entries": entries,
        # A metric logged once is a value, not a chart of one dot.
        "charted": [m for m in metrics if m["count"] > 1],
        "single_values": [m for m in metrics if m["count"] <= 1],
        "elapsed": _elapsed(run), "panels": [panel.url for panel in page_links("run-panels", run, role=role)],
        "can_edit": role >= Role.EDITOR and run.lifecycle == Lifecycle.ACTIVE,
        "can_restore": role >= Role.EDITOR and run.lifecycle == Lifecycle.DELETED,
        "notes_form": NotesForm(initial={"notes": run.notes}),
        "tag_form": TagForm(), "job": _latest_summary_job(run),
        "chart_config": {
            "runs": [{"id": str(run.pk), "name": run.name or str(run.pk)[:8]}],
            "keys": charted_keys,
            "maxPoints": CHART_MAX_POINTS,
            "histories": _inline_histories(run, charted_keys[:INLINE_CHARTS]),
            "liveUrl": reverse("experiments:run-live", args=[run.pk]),
            "pollMs": RUN_POLL_MS,
            "state": _run_state(run, metrics),
        },
        "nav": "projects",
    })


@login_required
@require_GET
def run_live(request, run_id):
    """The run page's changing parts as JSON, polled while the run is running."""
    run = run_for_user(request.user, run_id)
    response = JsonResponse(_run_state(run, _run_metrics(run)))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def run_notes(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
    form = NotesForm(request.POST)
    if form.is_valid():
        try:
            services.run_update(run=run, notes=form.cleaned_data["notes"])
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, "Notes saved.")
    else:
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
    return redirect(reverse("experiments:run", args=[run.pk]) + "#notes")


@login_required
@require_POST
def run_tag_set(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
    form = TagForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({k: list(errs) for k, errs in form.errors.items()})
        key = v.key_check(form.cleaned_data["key"], "key")
        value = v.tag_value(form.cleaned_data["value"], "value")
        services.tags_set(run=run, pairs=[(key, value)])
    except ValidationError as exc:
        messages.error(request, f"Tag not saved: {error_text(exc)}")
    else:
        messages.success(request, f"Tag “{key}” saved.")
    return redirect(reverse("experiments:run", args=[run.pk]) + "#tags")


@login_required
@require_POST
def run_tag_delete(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
    form = TagDeleteForm(request.POST)
    if form.is_valid():
        services.tag_delete(run=run, key=form.cleaned_data["key"])
        messages.success(request, f"Tag “{form.cleaned_data['key']}” removed.")
    return redirect(reverse("experiments:run", args=[run.pk]) + "#tags")


@login_required
@require_POST
def run_summary(request, run_id):
    run = run_for_user(request.user, run_id, min_role=Role.EDITOR)
    job = jobs.job_create(kind="run_summary", project=run.project, user=request.user,
                          params={"run_id": str(run.pk)})
    if request.htmx:
        return render(request, "experiments/_job_progress.html", {"job": job})
    messages.info(request, "Metric summary queued.")
    return redirect(reverse("experiments:run", args=[run.pk]) + "#summary")


# --- Artifacts --------------------------------------------------------------------------------------


def artifact_download_url(run, path: str) -> str:
    return f"/api/v1/runs/{run.pk}/artifacts/{quote(path)}"


def _extension(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def _tree_entries(run, prefix: str) -> list[dict]:
    entries = artifacts.artifact_tree(run=run, prefix=prefix)
    for entry in entries:
        entry["name"] = entry["path"].rsplit("/", 1)[-1]
    return entries


@login_required
@require_GET
def run_artifacts(request, run_id):
    """One folder level of the artifact tree (htmx loads it when a folder is opened)."""
    run = run_for_user(request.user, run_id)
    prefix = request.GET.get("prefix", "")
    try:
        entries = _tree_entries(run, prefix)
    except ValidationError as exc:
        return render(request, "experiments/_error.html", {"error": error_text(exc)}, status=400)
    return render(request, "experiments/_artifact_tree.html", {"run": run, "entries": entries})


def _read_bounded(handle, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from a stream, and whether more was left."""
    chunks, size = [], 0
    while size <= limit:
        chunk = handle.read(min(64 * 1024, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return data[:limit], len(data) > limit


@login_required
@require_GET
def artifact_preview(request, run_id):
    run = run_for_user(request.user, run_id)
    path = request.GET.get("path", "")
    try:
        artifact, handle = artifacts.artifact_open(run=run, path=path, user=request.user)
    except ValidationError as exc:
        return render(request, "experiments/_error.html", {"error": error_text(exc)}, status=400)
    except PermissionDenied as exc:
        return render(request, "experiments/_error.html", {"error": error_text(exc)}, status=403)
    context = {"run": run, "artifact": artifact, "download_url": artifact_download_url(run, artifact.path),
               "kind": "binary"}
    ext = _extension(artifact.path)
    try:
        if ext in IMAGE_EXTENSIONS:
            context["kind"] = "image"
        elif ext in (".csv", ".tsv"):
            data, truncated = _read_bounded(handle, CSV_PREVIEW_BYTES)
            text = data.decode("utf-8", errors="replace")
            if truncated:
                text = text.rsplit("\n", 1)[0]  # drop the partial last line
            reader = csv.reader(io.StringIO(text), delimiter="\t" if ext == ".tsv" else ",")
            table = []
            for row in reader:
                table.append(row)
                if len(table) > CSV_PREVIEW_ROWS:
                    truncated = True
                    table.pop()
                    break
            context.update(kind="csv", header=table[0] if table else [], rows=table[1:], truncated=truncated)
        elif ext == ".json" or ext in TEXT_EXTENSIONS or artifact.content_type.startswith("text/"):
            data, truncated = _read_bounded(handle, TEXT_PREVIEW_BYTES)
            text = data.decode("utf-8", errors="replace")
            if ext == ".json" and not truncated:
                try:
                    text = json.dumps(json_parse(data, allow_nan=True), indent=2, ensure_ascii=False)
                except ValidationError:
                    pass  # shown as it is
            context.update(kind="json" if ext == ".json" else "text", text=text, truncated=truncated)
    finally:
        handle.close()
    return render(request, "experiments/_artifact_preview.html", context)


# --- Compare ----------------------------------------------------------------------------------------


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


@login_required
@require_GET
def compare(request, slug: str):
    project = project_for_user(request.user, slug)
    ids = list(dict.fromkeys(request.GET.getlist("runs")))
    error = None
    if not COMPARE_MIN <= len(ids) <= COMPARE_MAX:
        error = f"Choose between {COMPARE_MIN} and {COMPARE_MAX} runs to compare (you chose {len(ids)})."
        runs = []
    else:
        try:
            found = {
                str(r.pk): r for r in Run.objects.filter(project=project, pk__in=ids)
                .select_related("experiment", "author")
            }
        except ValidationError:
            found = {}
        if len(found) != len(ids):
            raise Http404("One of those runs does not exist in this project.")
        runs = runs_with_details([found[i] for i in ids])
    rows = _run_rows(runs)
    param_keys = sorted({k for r in rows for k in r["params"]})
    metric_keys = sorted({k for r in rows for k in r["metrics"]})
    param_table = []
    for key in param_keys:
        values = [r["params"].get(key) for r in rows]
        param_table.append({"key": key, "values": values, "differs": len(set(values)) > 1})
    metric_table = []
    for key in metric_keys:
        values = [r["metrics"].get(key) for r in rows]
        numbers = [_number(x) for x in values]
        present = [n for n in numbers if n is not None]
        metric_table.append({
            "key": key, "values": values, "differs": len(set(map(str, values))) > 1,
            "max": max(present) if present else None, "min": min(present) if present else None,
        })
    primary = primary_metric(metric_keys)
    differing_params = [p["key"] for p in param_table if p["differs"]]
    scatter_x = f"params.{(differing_params or param_keys)[0]}" if param_keys else f"metrics.{primary}"
    data = {
        "runs": [
            {"id": str(r["run"].pk), "name": r["run"].name or str(r["run"].pk)[:8],
             "params": r["params"], "metrics": {k: _number(x) for k, x in r["metrics"].items()}}
            for r in rows
        ],
        "paramKeys": param_keys, "metricKeys": metric_keys,
        "maxPoints": CHART_MAX_POINTS // 2,
    }
    return render(request, "experiments/compare.html", {
        "project": project, "rows": rows, "param_table": param_table, "metric_table": metric_table,
        "param_keys": param_keys, "metric_keys": metric_keys, "compare_data": data, "error": error,
        "primary_metric": primary, "scatter_x": scatter_x,
        "differing_only": request.GET.get("diff") == "1", "nav": "projects",
    })


# --- Jobs -------------------------------------------------------------------------------------------


@login_required
@require_GET
def job_progress(request, job_id: int):
    job = job_for_user(request.user, job_id)
    return render(request, "experiments/_job_progress.html", {"job": job})


@login_required
@require_GET
def job_detail(request, job_id: int):
    job = job_for_user(request.user, job_id)
    return render(request, "experiments/job.html", {"job": job, "project": job.project, "nav": "projects"})


# --- Trash ---------------------------------------------------------------------------------------


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
