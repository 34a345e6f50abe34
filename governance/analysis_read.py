"""The fairness report and explanation of a version as the API, SDK and pages read them.

A reader who may not see PII (accounts.permissions.can_see_pii) gets the groups of PII sensitive
columns as placeholders and no values of PII input columns, like every other PII value.
"""

from __future__ import annotations

from typing import Any

from accounts.selectors import pii_columns, pii_mask_record
from core.models import Job
from governance.fairness import groups_masked
from governance.models import Explanation, FairnessReport
from governance.verdicts import fairness_verdicts
from registry.models import ModelVersion, VersionStatus

# The status of an analysis that has no row yet: the version is still being checked (it starts
# when the version becomes ready), or failed its checks (it never starts).
WAITING = "waiting_for_checks"
NOT_APPLICABLE = "not_applicable"


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _job(job: Job | None) -> dict[str, Any] | None:
    if job is None:
        return None
    return {"id": job.pk, "status": job.status, "progress": job.progress, "message": job.message}


def _no_row_status(version: ModelVersion) -> str:
    return WAITING if version.status == VersionStatus.PENDING_CHECKS else NOT_APPLICABLE


def fairness_output(version: ModelVersion, *, show_pii: bool) -> dict[str, Any]:
    from governance.analysis import thresholds_for_version

    report = FairnessReport.objects.select_related("job").filter(version=version).first()
    if report is None:
        return {"status": _no_row_status(version), "version": version.version, "job": None, "error": "",
                "task": version.output_kind, "groups": [], "summary": {}, "verdicts": [],
                "sensitive_features": [], "data_source": {}}
    pii = pii_columns(names=(report.data_source or {}).get("pii_features") or ())
    groups = report.groups if show_pii else groups_masked(report.groups, report.summary, set(pii))
    thresholds = thresholds_for_version(version)
    verdicts = fairness_verdicts(summary=report.summary, groups=groups, thresholds=thresholds,
                                 task=report.task or "classification") if report.summary else []
    return {
        "status": report.status,
        "version": version.version,
        "job": _job(report.job),
        "error": report.error,
        "task": report.task,
        "data_source": report.data_source,
        "sensitive_features": report.sensitive_features,
        "min_group_size": report.min_group_size,
        "groups": groups,
        "summary": report.summary,
        "verdicts": verdicts,
        "thresholds": {"demographic_parity_ratio_min": thresholds.demographic_parity_ratio_min,
                       "equalized_odds_difference_max": thresholds.equalized_odds_difference_max,
                       "min_group_size": thresholds.min_group_size},
        "updated_at": _iso(report.updated_at),
    }


def explanation_output(version: ModelVersion, *, show_pii: bool, beeswarm: bool = False) -> dict[str, Any]:
    explanation = Explanation.objects.select_related("job").filter(version=version).first()
    if explanation is None:
        return {"status": _no_row_status(version), "version": version.version, "job": None, "error": "",
                "explainer": "", "output": "", "base_value": None, "global_importance": {}, "rows": [],
                "additivity_ok": None}
    rows = explanation.rows
    pii = pii_columns(version.columns)
    if pii and not show_pii:
        rows = [{**row, "input": pii_mask_record(row["input"], pii)} for row in rows]
    body = {
        "status": explanation.status,
        "version": version.version,
        "job": _job(explanation.job),
        "error": explanation.error,
        "explainer": explanation.explainer,
        "output": explanation.output,
        "explained_class": explanation.explained_class,
        "base_value": explanation.base_value,
        # Largest first (PostgreSQL's jsonb does not keep the order the job stored).
        "global_importance": dict(sorted(explanation.global_importance.items(), key=lambda p: -p[1])),
        "rows": rows,
        "additivity_ok": explanation.additivity_ok,
        "additivity_max_error": explanation.additivity_max_error,
        "row_count": explanation.row_count,
        "background_size": explanation.background_size,
        "data_source": explanation.data_source,
        "notes": explanation.notes,
        "pii_masked": sorted(pii) if pii and not show_pii else [],
        "updated_at": _iso(explanation.updated_at),
    }
    if beeswarm:
        body["beeswarm"] = beeswarm_shown(explanation, pii, show_pii)
    return body


def beeswarm_shown(explanation: Explanation, pii: frozenset[str], show_pii: bool) -> dict[str, Any]:
    """The beeswarm data; without PII access, PII columns keep their SHAP values but lose the
    colour that encodes their values."""
    if show_pii or not pii:
        return explanation.beeswarm
    return {k: ({**v, "value": [None] * len(v.get("value", []))} if k in pii else v)
            for k, v in explanation.beeswarm.items()}
