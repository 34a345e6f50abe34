"""Governance reacts to the registry: a version that becomes ready gets its fairness audit and
its explanation queued. (A pickle waiting for an administrator's trust is not ready: it stays
pending until trusted and checked, and only then is analysed.)"""

from django.dispatch import receiver

from registry.models import VersionStatus
from registry.signals import model_version_status_changed


@receiver(model_version_status_changed, dispatch_uid="governance.analyses_on_ready")
def analyses_on_ready(sender, version, old_status, new_status, **kwargs) -> None:
    if new_status != VersionStatus.READY or old_status == VersionStatus.READY:
        return
    from governance.analysis import analyses_start

    analyses_start(version=version, user=version.author)
