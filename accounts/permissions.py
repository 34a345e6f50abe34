"""The one permission helper: every view and endpoint asks it for a project.

A project the user cannot see answers 404 (so its existence is not revealed);
a project they can see but not change answers 403. Who has which role is
decided in accounts.selectors, which serving asks too.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import Project, Role
from accounts.selectors import NO_PROJECT, pii_visible, role_for
from core.errors import NotFound, PermissionDenied

__all__ = ["can_see_pii", "project_create_allowed", "project_create_check", "project_for_user",
           "projects_visible_to", "require_pii_access", "require_role", "role_for"]


def project_for_user(user, slug: str, min_role: Role = Role.VIEWER) -> Project:
    project = Project.objects.filter(slug=slug).first()
    role = role_for(user, project) if project is not None else None
    if role is None:
        raise NotFound(NO_PROJECT)
    if role < min_role:
        raise PermissionDenied(
            f"This needs the {Role(min_role).label} role in '{slug}'; you are {role.label}."
        )
    project.user_role = role
    return project


def require_role(user, project: Project, min_role: Role) -> Role:
    """For objects reached by id: 404 unless visible, 403 unless the role suffices."""
    role = role_for(user, project)
    if role is None:
        raise NotFound("Not found.")
    if role < min_role:
        raise PermissionDenied(f"This needs the {Role(min_role).label} role in '{project.slug}'.")
    return role


def can_see_pii(user, project: Project) -> bool:
    """Whether ``user`` may see values of PII-flagged columns in ``project``, and what carries them
    (accounts.selectors.pii_visible: editors and above)."""
    return pii_visible(user, project)


def require_pii_access(user, project: Project) -> None:
    """403 for a member who may not see PII values (the caller has already answered 404 to others)."""
    if not can_see_pii(user, project):
        raise PermissionDenied("This holds values of PII columns; it needs a role that may see PII "
                               "(editor or above).")


def projects_visible_to(user) -> QuerySet[Project]:
    if not user.is_active:
        return Project.objects.none()
    if user.is_staff:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


def project_create_allowed(user) -> bool:
    """PROJECT_CREATION: "everyone" lets any user create (and so own) a project; "staff" only staff."""
    return settings.PROJECT_CREATION == "everyone" or bool(user.is_staff)


def project_create_check(user) -> None:
    if not project_create_allowed(user):
        raise PermissionDenied("Only an instance administrator (staff) can create projects on this server.")
