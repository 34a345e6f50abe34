from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import selectors
from accounts.models import ApiToken, Membership, Project, Role, token_generate, token_hash
from core.audit import audit_record
from core.errors import NotFound

User = get_user_model()

# last_used_at is written at most this often, so token use is not a write per request.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def api_token_create(
    *, user, name: str = "default", expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is never stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "Give the token a name of 1-100 characters."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    raw = token_generate()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, key_hash=token_hash(raw), prefix=raw[:8], expires_at=expires_at
        )
        audit_record(
            action="token.created", actor=user, object_type="accounts.ApiToken", object_id=token.pk,
            after={"user": user.get_username(), "name": name, "prefix": token.prefix,
                   "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return token, raw


def api_token_authenticate(*, raw: str, now: dt.datetime) -> ApiToken | None:
    """The usable token ``raw`` names (accounts.selectors.api_token_find), its use recorded."""
    token = selectors.api_token_find(raw=raw, now=now)
    if token is not None:
        token.last_used_at = api_token_used(token_id=token.pk, last_used_at=token.last_used_at, now=now)
    return token


def api_token_used(*, token_id: int, last_used_at: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """Record a token's use, at most once per LAST_USED_RESOLUTION; the last use now recorded."""
    if last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
        return now
    return last_used_at


def api_token_revoke(*, user, token_id: int) -> ApiToken:
    token = ApiToken.objects.filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound("No such token.")
    if token.revoked_at is None:
        with transaction.atomic():
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(
                action="token.revoked", actor=user, object_type="accounts.ApiToken", object_id=token.pk,
                before={"revoked_at": None},
                after={"user": user.get_username(), "name": token.name, "prefix": token.prefix,
                       "revoked_at": token.revoked_at.isoformat()},
            )
    return token


@transaction.atomic
def project_create(*, user, slug: str, name: str = "", description: str = "") -> Project:
    project = Project(slug=slug, name=name or slug, description=description, created_by=user)
    project.full_clean()
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError:
        raise ValidationError({"slug": f"A project named '{slug}' already exists."}) from None
    Membership.objects.create(project=project, user=user, role=Role.OWNER)
    audit_record(
        action="project.created", actor=user, object_type="accounts.Project", object_id=project.pk,
        project_id=project.pk, after={"slug": project.slug, "owner": user.get_username()},
    )
    return project


def _membership_audit(*, action: str, actor, project: Project, user, before: str | None,
                      after: str | None) -> None:
    audit_record(
        action=action, actor=actor, object_type="accounts.Membership", object_id=f"{project.pk}:{user.pk}",
        project_id=project.pk,
        before={"user": user.get_username(), "role": before} if before else {},
        after={"user": user.get_username(), "role": after} if after else {},
    )


def membership_set(*, project: Project, username: str, role: str, actor=None) -> Membership:
    try:
        role_value = Role.from_name(role)
    except ValueError:
        names = ", ".join(r.label for r in Role)
        raise ValidationError({"role": f"Role must be one of {names}."}) from None
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"username": f"No user named '{username}'."})
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            project=project, user=user, defaults={"role": role_value}
        )
        if created:
            _membership_audit(action="membership.added", actor=actor, project=project, user=user,
                              before=None, after=role_value.label)
        elif membership.role != role_value:
            _refuse_removing_last_owner(project, membership, role_value)
            before = Role(membership.role).label
            membership.role = role_value
            membership.save(update_fields=["role"])
            _membership_audit(action="membership.role_changed", actor=actor, project=project, user=user,
                              before=before, after=role_value.label)
    return membership


def membership_remove(*, project: Project, username: str, actor=None) -> None:
    with transaction.atomic():
        membership = (
            Membership.objects.select_for_update()
            .filter(project=project, user__username=username)
            .first()
        )
        if membership is None:
            raise ValidationError({"username": f"'{username}' is not a member."})
        _refuse_removing_last_owner(project, membership, None)
        _membership_audit(action="membership.removed", actor=actor, project=project, user=membership.user,
                          before=Role(membership.role).label, after=None)
        membership.delete()


def _refuse_removing_last_owner(project: Project, membership: Membership, new_role) -> None:
    if membership.role == Role.OWNER and new_role != Role.OWNER:
        owners = Membership.objects.filter(project=project, role=Role.OWNER).count()
        if owners <= 1:
            raise ValidationError({"role": "A project keeps at least one owner."})
