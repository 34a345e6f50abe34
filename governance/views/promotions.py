"""Governance pages: the Reviews inbox, the review page, a model's promotions and the policies."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.permissions import can_see_pii, project_for_user, role_for
from core.errors import DomainError, error_text
from governance import policies, promotions, selectors
from governance.analysis_read import explanation_output, fairness_output
from governance.cards import model_card_context
from governance.models import Notification, Policy, PromotionRequest, ReviewDecision
from registry import selectors as registry_selectors
from registry.models import ModelVersion, VersionStatus


@login_required
@require_GET
def inbox(request):
    user = request.user
    notices = list(Notification.objects.filter(user=user).select_related("request")[:30])
    return render(request, "governance/inbox.html", {
        "nav": "reviews",
        "waiting": selectors.requests_waiting_for(user),
        "mine": selectors.requests_made_by(user),
        "decided": selectors.recent_decisions(user),
        "models": selectors.models_to_promote(user),
        "notices": notices,
        "unread": sum(1 for n in notices if n.read_at is None),
    })


@login_required
@require_POST
def notifications_read(request):
    Notification.objects.filter(user=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect(reverse("governance:inbox"))


def _metrics_against(version: ModelVersion, champion: ModelVersion | None) -> list[dict]:
    ours, theirs = version.metrics or {}, (champion.metrics if champion else {}) or {}
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key), theirs.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        rows.append({"key": key, "value": a, "champion": b, "delta": (a - b) if numeric else None})
    return rows


@login_required
@require_GET
def review_page(request, request_id: int):
    promotion = selectors.request_for_user(request.user, request_id)
    Notification.objects.filter(user=request.user, request=promotion, read_at__isnull=True).update(
        read_at=timezone.now())
    model, version = promotion.model, promotion.version
    project = model.project
    policy = policies.policy_for_model(model)
    champion = policies.champion_version(model, promotion.alias)
    if champion is not None and version is not None and champion.pk == version.pk:
        champion = promotion.previous_version  # after the move, compare with what it replaced
    refusal = promotions.review_refusal(request=promotion, user=request.user)
    run = version.run if version else None
    show_pii = can_see_pii(request.user, project)
    return render(request, "governance/review.html", {
        "nav": "reviews", "project": project, "model": model, "version": version, "promotion": promotion,
        "policy": policy, "champion": champion,
        "alias_now": policies.champion_version(model, promotion.alias),
        "metrics": _metrics_against(version, champion) if version else [],
        "approvals": promotions.approvals_in_force(promotion) if version else [],
        "reviews": list(promotion.reviews.select_related("reviewer")),
        "report": fairness_output(version, show_pii=show_pii) if version else None,
        "explanation": explanation_output(version, show_pii=show_pii, beeswarm=True) if version else None,
        "can_rerun": False,
        "card": model_card_context(version, show_pii=show_pii) if version else None,
        "run": run, "dataset_version": version.training_dataset_version if version else None,
        "can_review": promotion.is_open and refusal is None,
        "review_refusal": refusal if promotion.is_open else None,
        "can_withdraw": promotion.is_open and (promotion.requester_id == request.user.pk
                                               or role_for(request.user, project) >= Role.OWNER),
        "decisions": ReviewDecision.choices,
    })


@login_required
@require_POST
def review_decide(request, request_id: int):
    promotion = selectors.request_for_user(request.user, request_id)
    decision = request.POST.get("decision", "")
    try:
        promotions.promotion_review(request=promotion, user=request.user, decision=decision,
                                    comment=request.POST.get("comment", ""))
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        promotion.refresh_from_db()
        if promotion.status == "approved":
            messages.success(request, f"Approved: {promotion.model.name}@{promotion.alias} now points at "
                                      f"v{promotion.version.version}.")
        else:
            messages.success(request, "Your review is recorded; the request is "
                                      f"{promotion.get_status_display()}.")
    return redirect(reverse("governance:review", args=[request_id]))


@login_required
@require_POST
def withdraw(request, request_id: int):
    promotion = selectors.request_for_user(request.user, request_id)
    try:
        promotions.promotion_request_withdraw(request=promotion, user=request.user)
    except DomainError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "The request is withdrawn.")
    return redirect(reverse("governance:review", args=[request_id]))


# --- A model's promotions and policy --------------------------------------------------------

def _policy_form_changes(post) -> dict:
    changes: dict = {
        "fairness_required": post.get("fairness_required") == "on",
        "explanation_required": post.get("explanation_required") == "on",
    }
    for name in ("demographic_parity_ratio_min", "equalized_odds_difference_max", "min_group_size",
                 "approvals_required", "webhook_url"):
        if name in post:
            changes[name] = post.get(name, "").strip()
    if post.get("webhook_secret"):
        changes["webhook_secret"] = post["webhook_secret"]
    thresholds = []
    for metric, kind, value in zip(post.getlist("threshold_metric"), post.getlist("threshold_kind"),
                                   post.getlist("threshold_value"), strict=False):
        if metric.strip():
            key = "min" if kind == "min" else "champion_tolerance"
            thresholds.append({"metric": metric.strip(), key: value})
    changes["performance_thresholds"] = thresholds
    return changes


@login_required
@require_GET
def model_promotions(request, slug: str, name: str):
    model = registry_selectors.model_for_user(request.user, slug, name)
    role = model.project.user_role
    policy = policies.policy_for_model(model)
    return render(request, "governance/policy.html", {
        "nav": "reviews", "project": model.project, "model": model, "policy": policy,
        "own_policy": policy.model_id is not None,
        "versions": ModelVersion.objects.filter(model=model, status=VersionStatus.READY).order_by("-version"),
        "aliases": {a.name: a.version.version for a in model.aliases.select_related("version")},
        "requests": PromotionRequest.objects.filter(model=model)
        .select_related("version", "requester", "previous_version")[:50],
        "can_request": role >= Role.EDITOR, "is_owner": role >= Role.OWNER,
    })


def _model_promotions_url(model) -> str:
    return reverse("governance:model", args=[model.project.slug, model.name])


@login_required
@require_POST
def request_create(request, slug: str, name: str):
    model = registry_selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
    try:
        number = int(request.POST.get("version", ""))
    except ValueError:
        messages.error(request, "version: Choose a version.")
        return redirect(_model_promotions_url(model))
    version = ModelVersion.objects.filter(model=model, version=number).first()
    try:
        if version is None:
            raise ValidationError({"version": "No such version."})
        created = promotions.promotion_request_create(
            model=model, version=version, alias=request.POST.get("alias", ""),
            justification=request.POST.get("justification", ""), user=request.user)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
        return redirect(_model_promotions_url(model))
    messages.success(request, f"Promotion request #{created.pk} created; reviewers are notified.")
    return redirect(reverse("governance:review", args=[created.pk]))


@login_required
@require_POST
def rollback(request, slug: str, name: str):
    model = registry_selectors.model_for_user(request.user, slug, name, min_role=Role.OWNER)
    try:
        done = promotions.promotion_rollback(model=model, alias=request.POST.get("alias", ""),
                                             user=request.user,
                                             justification=request.POST.get("justification", ""))
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_text(exc))
    else:
        target = f"v{done.version.version}" if done.version_id else "no version (removed)"
        messages.success(request, f"'{done.alias}' rolled back to {target}.")
    return redirect(_model_promotions_url(model))


@login_required
@require_POST
def model_policy_edit(request, slug: str, name: str):
    model = registry_selectors.model_for_user(request.user, slug, name, min_role=Role.OWNER)
    try:
        policies.policy_update(project=model.project, model=model, changes=_policy_form_changes(request.POST),
                               user=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"The policy of {model.name} is saved.")
    return redirect(_model_promotions_url(model) + "#policy")


@login_required
@require_http_methods(["GET", "POST"])
def project_policy(request, slug: str):
    project = project_for_user(request.user, slug)
    if request.method == "POST":
        project = project_for_user(request.user, slug, min_role=Role.OWNER)
        try:
            policies.policy_update(project=project, model=None, changes=_policy_form_changes(request.POST),
                                   user=request.user)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, "The project's default policy is saved.")
        return redirect(reverse("governance:project-policy", args=[slug]))
    return render(request, "governance/policy_project.html", {
        "nav": "reviews", "project": project, "policy": policies.project_default_policy(project),
        "is_owner": project.user_role >= Role.OWNER,
        "overrides": Policy.objects.filter(project=project, model__isnull=False).select_related("model"),
    })
