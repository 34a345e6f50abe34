"""Governance reacts to the registry: a version that becomes ready gets its fairness audit and
its explanation queued. (A pickle waiting for an administrator's trust is not ready: it stays
pending until trusted and checked, and only then is analysed.)"""

import logging

from django.dispatch import receiver

from core.errors import PermissionDenied
from monitoring.signals import retrained_version_created
from registry.models import VersionStatus
from registry.signals import model_version_status_changed

logger = logging.getLogger(__name__)


@receiver(model_version_status_changed, dispatch_uid="governance.analyses_on_ready")
def analyses_on_ready(sender, version, old_status, new_status, **kwargs) -> None:
    if new_status != VersionStatus.READY or old_status == VersionStatus.READY:
        return
    from governance.analysis import analyses_start

    analyses_start(version=version, user=version.author)


@receiver(retrained_version_created, dispatch_uid="governance.review_retrained_version")
def review_retrained_version(sender, version, monitor, **kwargs) -> None:
    """A monitor retrained its model: ask for the version's promotion to the monitor's alias, so
    it goes through the same checks and human review as any other (the alias does not move)."""
    from django.core.exceptions import ValidationError

    from governance.promotions import promotion_request_create

    model = version.model
    if not model.is_protected(monitor.alias) or monitor.created_by is None:
        return  # an unprotected alias has no review to go through
    try:
        promotion_request_create(
            model=model, version=version, alias=monitor.alias, user=monitor.created_by,
            justification=f"Retrained by monitor #{monitor.pk} after an alert on '{monitor.alias}'.",
        )
    except (PermissionDenied, ValidationError) as exc:
        # The monitor's owner may have lost the editor role since; the version stays registered.
        logger.warning("No promotion request for retrained %s v%s: %s", model.name, version.version, exc)
