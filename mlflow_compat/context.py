"""Which Steward project an MLflow request is about, and the objects it names, for this user.

The project comes from the URL prefix (``/mlflow/<slug>/api/2.0/mlflow/...``), else from
MLflow's workspace header (``X-MLFLOW-WORKSPACE``), else it is the one project the user
can see. What the user cannot see does not exist (RESOURCE_DOES_NOT_EXIST); what they
may see but not change is PERMISSION_DENIED.
"""

from __future__ import annotations

import uuid

from accounts.models import Project, Role
from accounts.permissions import project_for_user, projects_visible_to, require_role
from core.errors import NotFound
from experiments.models import Experiment, Run
from mlflow_compat import errors

WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def project_slug_of(request, kwargs: dict) -> str | None:
    return kwargs.get("project_slug") or request.headers.get(WORKSPACE_HEADER) or None


def project_for(request, slug: str | None, min_role: Role = Role.VIEWER) -> Project:
    if slug:
        try:
            return project_for_user(request.user, slug, min_role=min_role)
        except NotFound:
            raise errors.not_found(f"No project (workspace) named '{slug[:64]}'.") from None
    visible = list(projects_visible_to(request.user).order_by("slug")[:2])
    if len(visible) != 1:
        raise errors.invalid(
            "Choose a Steward project: set MLFLOW_TRACKING_URI to http://<host>/mlflow/<project-slug>, "
            "or MLFLOW_WORKSPACE to the project's slug."
        )
    return project_for_user(request.user, visible[0].slug, min_role=min_role)


def run_uuid(run_id) -> uuid.UUID:
    """A run id as MLflow sends it (32 hex digits) or as Steward shows it (a UUID with dashes)."""
    if not isinstance(run_id, str) or not run_id:
        raise errors.invalid("run_id: Give the run's id.")
    try:
        return uuid.UUID(run_id)
    except ValueError:
        raise errors.not_found(f"Run '{run_id[:64]}' not found.") from None


def run_for(request, slug: str | None, run_id, min_role: Role = Role.VIEWER) -> Run:
    """The run by id, for this user; with a project chosen, a run of another project does not exist."""
    pk = run_uuid(run_id)
    run = Run.objects.select_related("experiment", "project", "author").filter(pk=pk).first()
    if run is None or (slug and run.project.slug != slug):
        raise errors.not_found(f"Run '{run_id}' not found.")
    try:
        require_role(request.user, run.project, min_role)
    except NotFound:
        raise errors.not_found(f"Run '{run_id}' not found.") from None
    return run


def experiment_for(project: Project, experiment_id, *, user=None, create_default: bool = False) -> Experiment:
    """An experiment of ``project`` by MLflow id; "0" is the project's default experiment."""
    if experiment_id is None or experiment_id == "":
        raise errors.invalid("experiment_id: Give the experiment's id.")
    experiment_id = str(experiment_id)
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        found = Experiment.objects.filter(project=project, name=DEFAULT_EXPERIMENT_NAME).first()
        if found is None and create_default:
            from experiments.services import experiment_get_or_create

            found = experiment_get_or_create(project=project, name=DEFAULT_EXPERIMENT_NAME, user=user)
        if found is None:
            raise errors.not_found("Could not find experiment with ID 0.")
        return found
    if not experiment_id.isascii() or not experiment_id.isdigit() or len(experiment_id) > 18:
        raise errors.not_found(f"Could not find experiment with ID {experiment_id[:40]}.")
    found = Experiment.objects.filter(project=project, pk=int(experiment_id)).first()
    if found is None:
        raise errors.not_found(f"Could not find experiment with ID {experiment_id}.")
    return found
