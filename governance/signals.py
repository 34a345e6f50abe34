"""Signals governance defines, and its receivers of the registry's.

``analysis_finished`` — send it when a version's fairness audit or explanation reaches
``succeeded`` or ``failed`` (the job that computes it does, after saving the row). Arguments:
``version_id`` (int) and ``kind`` ("fairness" | "explanation"). Open promotion requests for that
version are judged again, after commit, so an approval given while a check was still running
moves the alias the moment the last check passes. Saving a FairnessReport or Explanation row in
a final status has the same effect (a post_save receiver below), so an analysis written by any
path is noticed; receiving both is harmless.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

from governance.models import AnalysisStatus, Explanation, FairnessReport
from registry.signals import model_version_status_changed

analysis_finished = Signal()

FINAL = (AnalysisStatus.SUCCEEDED, AnalysisStatus.FAILED)


def _reevaluate_on_commit(version_id: int) -> None:
    def run() -> None:
        from governance.promotions import promotion_requests_evaluate_for_version

        promotion_requests_evaluate_for_version(version_id=version_id)

    transaction.on_commit(run)


@receiver(analysis_finished)
def _on_analysis_finished(sender, version_id: int, kind: str = "", **kwargs) -> None:
    _reevaluate_on_commit(version_id)


@receiver(post_save, sender=FairnessReport)
@receiver(post_save, sender=Explanation)
def _on_analysis_saved(sender, instance, **kwargs) -> None:
    if instance.status in FINAL:
        _reevaluate_on_commit(instance.version_id)


@receiver(model_version_status_changed)
def _on_version_status_changed(sender, version, old_status, new_status, **kwargs) -> None:
    _reevaluate_on_commit(version.pk)
