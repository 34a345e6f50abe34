"""Promotion policies: the project's default and a model's own, and the checks they make.

``policy_for_model`` gives the policy in force for a registered model (its own row, else the
project's default row, else the built-in defaults, unsaved). ``policy_checks`` judges one
version against it; promotion requests store the result and move only when every check passed.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Project
from core.audit import audit_record
from governance.models import OPEN_STATUSES, AnalysisStatus, Policy, PromotionRequest
from governance.verdicts import fairness_verdicts
from registry.models import ModelAlias, ModelVersion, RegisteredModel, VersionStatus

POLICY_FIELDS = ("fairness_required", "demographic_parity_ratio_min", "equalized_odds_difference_max",
                 "min_group_size", "performance_thresholds", "explanation_required",
                 "approvals_required", "webhook_url", "webhook_secret")
PASSED, FAILED, PENDING = "passed", "failed", "pending"


def project_default_policy(project: Project) -> Policy:
    return Policy.objects.filter(project=project, model__isnull=True).first() or Policy(project=project)


def policy_for_model(model: RegisteredModel) -> Policy:
    own = Policy.objects.filter(model=model).first()
    return own if own is not None else project_default_policy(model.project)


def policy_as_dict(policy: Policy) -> dict[str, Any]:
    """The policy's rules (the webhook secret is never shown back)."""
    body = {f: getattr(policy, f) for f in POLICY_FIELDS if f != "webhook_secret"}
    body["webhook_secret_set"] = bool(policy.webhook_secret)
    body["scope"] = "model" if policy.model_id else "project"
    return body


def _number(value: Any, field: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool):
        raise ValidationError({field: "Give a number."})
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "Give a number."}) from None
    too_low = low is not None and number < low
    too_high = high is not None and number > high
    if not math.isfinite(number) or too_low or too_high:
        raise ValidationError({field: f"Give a number between {low} and {high}." if high is not None
                               else f"Give a number of at least {low}."})
    return number


def _thresholds_clean(value: Any) -> list[dict[str, Any]]:
    field = "performance_thresholds"
    if value in (None, ""):
        return []
    if not isinstance(value, list) or len(value) > 50:
        raise ValidationError({field: "Give a list (at most 50) of {\"metric\", \"min\"} or "
                                      "{\"metric\", \"champion_tolerance\"}."})
    cleaned = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not str(item.get("metric") or "").strip() \
                or not isinstance(item["metric"], str):
            raise ValidationError({field: f"Item {i + 1} needs a metric name."})
        metric = item["metric"].strip()[:250]
        if ("min" in item) == ("champion_tolerance" in item):
            raise ValidationError({field: f"Item {i + 1} ({metric}) needs exactly one of 'min' or "
                                          "'champion_tolerance'."})
        if "min" in item:
            cleaned.append({"metric": metric, "min": _number(item["min"], field)})
        else:
            cleaned.append({"metric": metric,
                            "champion_tolerance": _number(item["champion_tolerance"], field, low=0)})
    return cleaned


def _apply(policy: Policy, changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "Not a policy setting."})
    for name, value in changes.items():
        if name in ("fairness_required", "explanation_required"):
            if not isinstance(value, bool):
                raise ValidationError({name: "Give true or false."})
        elif name == "demographic_parity_ratio_min":
            value = _number(value, name, low=0, high=1)
        elif name == "equalized_odds_difference_max":
            value = _number(value, name, low=0, high=1)
        elif name in ("min_group_size", "approvals_required"):
            if isinstance(value, bool) or not isinstance(value, int) and not (
                    isinstance(value, str) and value.strip().isdigit()):
                raise ValidationError({name: "Give a whole number."})
            value = int(value)
            if name == "approvals_required" and not 1 <= value <= 20:
                raise ValidationError({name: "At least one approval is required (and at most 20)."})
            if name == "min_group_size" and not 0 <= value <= 1_000_000:
                raise ValidationError({name: "Give a whole number from 0 to 1,000,000."})
        elif name == "performance_thresholds":
            value = _thresholds_clean(value)
        elif name == "webhook_url":
            value = (value or "").strip()
            if value and not value.startswith(("https://", "http://")):
                raise ValidationError({name: "Give an http(s) URL, or leave it empty."})
            if len(value) > 500:
                raise ValidationError({name: "At most 500 characters."})
        elif name == "webhook_secret":
            if not isinstance(value, str) or len(value) > 200:
                raise ValidationError({name: "Give a text of at most 200 characters."})
        setattr(policy, name, value)
    if policy.webhook_url and not policy.webhook_secret:
        raise ValidationError({"webhook_secret": "A webhook needs a secret to sign its requests."})


@transaction.atomic
def policy_update(*, project: Project, model: RegisteredModel | None, changes: dict[str, Any],
                  user) -> Policy:
    """Create or change the project's default policy (``model`` None) or a model's own.

    A model's own policy starts as a copy of the project default, so changing one rule keeps the rest.
    """
    if model is not None:
        policy = Policy.objects.select_for_update().filter(model=model).first()
        if policy is None:
            base = project_default_policy(project)
            policy = Policy(project=project, model=model,
                            **{f: getattr(base, f) for f in POLICY_FIELDS})
    else:
        policy = (Policy.objects.select_for_update().filter(project=project, model__isnull=True).first()
                  or Policy(project=project))
    before = policy_as_dict(policy) if policy.pk else {}
    _apply(policy, changes)
    policy.updated_by, policy.updated_at = user, timezone.now()
    policy.save()
    _reevaluate_open_requests_on_commit(project=project, model=model)
    audit_record(action="policy.updated", actor=user, object_type="governance.Policy", object_id=policy.pk,
                 project_id=project.pk, before=before,
                 after=policy_as_dict(policy) | {"model": model.name if model else None})
    return policy


def _reevaluate_open_requests_on_commit(*, project: Project, model: RegisteredModel | None) -> None:
    """A changed policy (fewer approvals, a looser threshold) applies to the requests still open."""
    qs = PromotionRequest.objects.filter(status__in=OPEN_STATUSES, model__project=project)
    qs = qs.filter(model=model) if model is not None else qs.filter(model__governance_policy__isnull=True)
    ids = list(qs.values_list("pk", flat=True))

    def run() -> None:
        from governance.promotions import promotion_request_evaluate

        for request_id in ids:
            promotion_request_evaluate(request_id=request_id)

    if ids:
        transaction.on_commit(run)


# --- Checks ---------------------------------------------------------------------------------


def _check(check: str, name: str, state: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"check": check, "name": name, "state": state, "message": message, **extra}


def champion_version(model: RegisteredModel, alias: str) -> ModelVersion | None:
    current = ModelAlias.objects.select_related("version").filter(model=model, name=alias).first()
    return current.version if current else None


def _metric(version: ModelVersion, name: str) -> float | None:
    value = (version.metrics or {}).get(name)
    if isinstance(value, dict):  # {"value": ..., "step": ...} as some runs store it
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _performance_checks(policy: Policy, version: ModelVersion, alias: str) -> list[dict[str, Any]]:
    out = []
    champion = None
    for rule in policy.performance_thresholds or []:
        metric = rule["metric"]
        value = _metric(version, metric)
        if value is None:
            out.append(_check("performance", metric, FAILED, f"v{version.version} has no metric '{metric}'."))
            continue
        if "min" in rule:
            floor, against = rule["min"], f"the policy's minimum {rule['min']:g}"
        else:
            champion = champion or champion_version(version.model, alias)
            if champion is None or champion.pk == version.pk:
                out.append(_check("performance", metric, PASSED,
                                  f"{metric} = {value:.4g}; no current '{alias}' to compare with."))
                continue
            theirs = _metric(champion, metric)
            if theirs is None:
                out.append(_check("performance", metric, PASSED,
                                  f"{metric} = {value:.4g}; the current '{alias}' (v{champion.version}) has "
                                  "no such metric to compare with."))
                continue
            floor = theirs - rule["champion_tolerance"]
            against = (f"the current '{alias}' v{champion.version} ({theirs:.4g}) minus "
                       f"{rule['champion_tolerance']:g}")
        passed = value >= floor
        out.append(_check("performance", metric, PASSED if passed else FAILED,
                          f"{metric} = {value:.4g} {'≥' if passed else '<'} {floor:.4g}, {against}.",
                          value=value, threshold=floor))
    return out


def _analysis_state(row, label: str, version: ModelVersion) -> tuple[str, str]:
    if row is None or row.status in (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING):
        return PENDING, f"The {label} of v{version.version} has not finished yet."
    if row.status == AnalysisStatus.FAILED:
        return FAILED, f"The {label} of v{version.version} failed: {(row.error or 'no detail')[:300]}"
    return PASSED, ""


def policy_checks(*, policy: Policy, version: ModelVersion, alias: str) -> list[dict[str, Any]]:
    """Every check of ``policy`` on ``version``: [{"check", "name", "state", "message", ...}]."""
    checks: list[dict[str, Any]] = []
    if version.status == VersionStatus.PENDING_CHECKS:
        checks.append(_check("version", "ready", PENDING,
                             f"v{version.version}'s file checks are still running."))
    elif version.status == VersionStatus.FAILED:
        checks.append(_check("version", "ready", FAILED, f"v{version.version} failed its file checks: "
                                                         f"{version.status_message[:300]}"))
    else:
        checks.append(_check("version", "ready", PASSED, f"v{version.version} passed its file checks."))

    if policy.fairness_required:
        report = _related(version, "fairness_report")
        state, message = _analysis_state(report, "fairness audit", version)
        if state != PASSED:
            checks.append(_check("fairness", "audit", state, message))
        else:
            verdicts = fairness_verdicts(summary=report.summary or {}, groups=report.groups or [],
                                         thresholds=policy.fairness_thresholds(),
                                         task=report.task or "classification")
            judged = [v for v in verdicts if v["metric"] != "small_groups"]
            for v in verdicts:
                checks.append(_check("fairness", f"{v['feature']}: {v['metric']}",
                                     PASSED if v["passed"] else FAILED, v["message"],
                                     value=v.get("value"), threshold=v.get("threshold"),
                                     informational=v["metric"] == "small_groups"))
            if not judged:
                checks.append(_check("fairness", "audit", PASSED,
                                     "The fairness audit finished with nothing to judge "
                                     "(no sensitive features, or not a classifier)."))
    if policy.explanation_required:
        explanation = _related(version, "explanation")
        state, message = _analysis_state(explanation, "explanation", version)
        checks.append(_check("explanation", "shap", state,
                             message or f"The explanation of v{version.version} is ready "
                                        f"({explanation.explainer or 'SHAP'})."))
    checks.extend(_performance_checks(policy, version, alias))
    return checks


def _related(version: ModelVersion, relation: str):
    try:
        return getattr(version, relation)
    except ObjectDoesNotExist:  # no row yet: the analysis is not even queued
        return None


def checks_state(checks: list[dict[str, Any]]) -> str:
    states = {c["state"] for c in checks}
    if FAILED in states:
        return FAILED
    if PENDING in states:
        return PENDING
    return PASSED
