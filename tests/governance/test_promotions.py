"""Promotion requests and reviews: who may approve, what blocks, when the alias moves."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.errors import Conflict, PermissionDenied
from governance import promotions
from governance.models import AnalysisStatus, Notification, PromotionStatus
from governance.signals import analysis_finished
from registry.models import AliasEvent, ModelAlias
from tests.governance.conftest import make_version

pytestmark = pytest.mark.django_db


def _alias(model, name="champion"):
    row = ModelAlias.objects.filter(model=model, name=name).select_related("version").first()
    return row.version.version if row else None


def _request(model, version, people, alias="champion"):
    return promotions.promotion_request_create(model=model, version=version, alias=alias,
                                               justification="Better recall.", user=people["requester"])


def test_approval_moves_the_alias_through_the_approved_path_with_its_audit_entry(model, people, policy,
                                                                                  audit_log):
    version = make_version(model, author=people["author"])
    request = _request(model, version, people)
    assert request.status == PromotionStatus.IN_REVIEW
    assert _alias(model) is None

    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    assert _alias(model) == version.version
    event = AliasEvent.objects.get(model=model, alias="champion")
    assert event.via == f"approval:governance.promotionrequest:{request.pk}"
    assert event.actor == people["alice"]
    actions = [e.action for e in audit_log]
    assert actions[0] == "promotion.requested" and "promotion.reviewed" in actions
    moved = next(e for e in audit_log if e.action == "alias.promoted")
    assert moved.after["version"] == version.version
    assert moved.after["approved_by"] == [people["alice"].username]
    assert moved.after["sha256"] == version.sha256


def test_self_approval_is_refused(model, people, policy):
    version = make_version(model, author=people["author"])
    # A reviewer may ask for a promotion, but never approve their own request.
    request = promotions.promotion_request_create(model=model, version=version, alias="champion",
                                                  justification="mine", user=people["alice"])
    with pytest.raises(PermissionDenied, match="someone else"):
        promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    assert request.reviews.count() == 0 and _alias(model) is None


def test_author_approval_is_refused(model, people, policy):
    version = make_version(model, author=people["bob"])  # bob is a reviewer and the version's author
    request = _request(model, version, people)
    with pytest.raises(PermissionDenied, match="author"):
        promotions.promotion_review(request=request, user=people["bob"], decision="approve", comment="")
    assert _alias(model) is None
    # An author's approval stored earlier (say, before authorship was known) does not count either.
    assert promotions.approvals_in_force(request) == []


@pytest.mark.parametrize("who", ["viewer", "editor2"])
def test_viewer_or_editor_cannot_approve(model, people, policy, who):
    request = _request(model, make_version(model, author=people["author"]), people)
    with pytest.raises(PermissionDenied, match="reviewer role"):
        promotions.promotion_review(request=request, user=people[who], decision="approve", comment="")
    assert _alias(model) is None


def test_approval_is_void_when_the_artifact_hash_changes(model, people, project):
    from governance.models import Policy

    Policy.objects.create(project=project, approvals_required=2)
    version = make_version(model, author=people["author"])
    request = _request(model, version, people)
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    assert [r.reviewer for r in promotions.approvals_in_force(request)] == [people["alice"]]

    # The version's ONNX file is no longer the one alice approved.
    version.onnx_sha256 = "f" * 64
    version.save(update_fields=["onnx_sha256"])
    promotions.promotion_review(request=request, user=people["bob"], decision="approve", comment="")
    request.refresh_from_db()
    assert request.status == PromotionStatus.IN_REVIEW
    assert _alias(model) is None
    assert [r.reviewer for r in promotions.approvals_in_force(request)] == [people["bob"]]

    # The same for the model file itself.
    version.sha256 = "e" * 64
    version.save(update_fields=["sha256"])
    assert promotions.approvals_in_force(request) == []


def test_failed_fairness_check_blocks_even_with_approvals(model, people, policy,
                                                          django_capture_on_commit_callbacks):
    version = make_version(model, author=people["author"], fairness=AnalysisStatus.RUNNING)
    request = _request(model, version, people)
    assert request.status == PromotionStatus.CHECKS_RUNNING
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="ok")
    promotions.promotion_review(request=request, user=people["bob"], decision="approve", comment="ok")

    report = version.fairness_report
    report.status = AnalysisStatus.SUCCEEDED
    report.summary = {"sex": {"demographic_parity_ratio": 0.5, "equalized_odds_difference": 0.02}}
    with django_capture_on_commit_callbacks(execute=True):
        report.save()
    request.refresh_from_db()
    assert request.status == PromotionStatus.BLOCKED
    assert any("four-fifths" in reason for reason in request.reasons)
    assert _alias(model) is None
    assert Notification.objects.filter(user=people["requester"], event="blocked", request=request).exists()


def test_approved_request_whose_last_check_finishes_later_moves_then(model, people, policy,
                                                                     django_capture_on_commit_callbacks):
    version = make_version(model, author=people["author"], explanation=AnalysisStatus.QUEUED)
    request = _request(model, version, people)
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    request.refresh_from_db()
    assert request.status == PromotionStatus.CHECKS_RUNNING and _alias(model) is None

    explanation = version.explanation
    explanation.status = AnalysisStatus.SUCCEEDED
    with django_capture_on_commit_callbacks(execute=True):
        explanation.save()
        analysis_finished.send(sender=None, version_id=version.pk, kind="explanation")
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED
    assert _alias(model) == version.version
    assert AliasEvent.objects.filter(model=model, alias="champion").count() == 1


def test_the_signal_alone_re_evaluates(model, people, policy, django_capture_on_commit_callbacks):
    version = make_version(model, author=people["author"], explanation=AnalysisStatus.RUNNING)
    request = _request(model, version, people)
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    # Written without post_save (a bulk update), announced by the job with the signal.
    type(version.explanation).objects.filter(pk=version.explanation.pk).update(status=AnalysisStatus.SUCCEEDED)
    with django_capture_on_commit_callbacks(execute=True):
        analysis_finished.send(sender=None, version_id=version.pk, kind="explanation")
    assert _alias(model) == version.version


def test_newer_request_supersedes_the_older(model, people, policy):
    v1 = make_version(model, author=people["author"])
    v2 = make_version(model, author=people["author"])
    first = _request(model, v1, people)
    second = _request(model, v2, people)
    first.refresh_from_db()
    assert first.status == PromotionStatus.SUPERSEDED and first.superseded_by_id == second.pk
    with pytest.raises(Conflict):
        promotions.promotion_review(request=first, user=people["alice"], decision="approve", comment="")
    promotions.promotion_review(request=second, user=people["alice"], decision="approve", comment="")
    assert _alias(model) == v2.version


def test_reject_needs_a_comment_and_ends_the_request(model, people, policy):
    request = _request(model, make_version(model, author=people["author"]), people)
    with pytest.raises(ValidationError) as err:
        promotions.promotion_review(request=request, user=people["alice"], decision="reject", comment=" ")
    assert "comment" in err.value.error_dict
    promotions.promotion_review(request=request, user=people["alice"], decision="reject",
                                comment="Leaks PII.")
    request.refresh_from_db()
    assert request.status == PromotionStatus.REJECTED
    with pytest.raises(Conflict):
        promotions.promotion_review(request=request, user=people["bob"], decision="approve", comment="")
    assert _alias(model) is None
    assert Notification.objects.get(user=people["requester"], event="rejected").message.endswith("Leaks PII.")


def test_request_changes_withdraws_that_reviewers_approval(model, people, project):
    from governance.models import Policy

    Policy.objects.create(project=project, approvals_required=2)
    request = _request(model, make_version(model, author=people["author"]), people)
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    promotions.promotion_review(request=request, user=people["alice"], decision="request_changes",
                                comment="Add the 2026 holdout.")
    promotions.promotion_review(request=request, user=people["bob"], decision="approve", comment="")
    assert _alias(model) is None
    assert [r.reviewer for r in promotions.approvals_in_force(request)] == [people["bob"]]


def test_performance_threshold_against_the_champion(model, people, project):
    from governance.models import Policy

    Policy.objects.create(project=project, performance_thresholds=[{"metric": "accuracy",
                                                                    "champion_tolerance": 0.01}])
    v1 = make_version(model, author=people["author"], metrics={"accuracy": 0.90})
    promotions.promotion_review(request=_request(model, v1, people), user=people["alice"], decision="approve",
                                comment="")
    assert _alias(model) == v1.version
    worse = make_version(model, author=people["author"], metrics={"accuracy": 0.85})
    request = _request(model, worse, people)
    assert request.status == PromotionStatus.BLOCKED
    assert any("accuracy" in r and "0.89" in r for r in request.reasons)
    close = make_version(model, author=people["author"], metrics={"accuracy": 0.895})
    assert _request(model, close, people).status == PromotionStatus.IN_REVIEW


def test_only_protected_aliases_take_requests_and_editors_ask(model, people, policy):
    version = make_version(model, author=people["author"])
    with pytest.raises(ValidationError) as err:
        _request(model, version, people, alias="challenger")
    assert "alias" in err.value.error_dict
    with pytest.raises(PermissionDenied):
        promotions.promotion_request_create(model=model, version=version, alias="champion", justification="x",
                                            user=people["viewer"])
    with pytest.raises(ValidationError) as err:
        promotions.promotion_request_create(model=model, version=version, alias="champion", justification="",
                                            user=people["requester"])
    assert "justification" in err.value.error_dict


def test_reviewers_are_notified_but_not_the_requester_or_author(model, people, policy):
    request = _request(model, make_version(model, author=people["author"]), people)
    notified = set(Notification.objects.filter(request=request).values_list("user__username", flat=True))
    assert notified == {people["alice"].username, people["bob"].username, people["owner"].username}


def test_owner_rolls_back_to_the_previous_approved_version_and_then_removes_the_first(model, people, policy,
                                                                                       audit_log):
    v1 = make_version(model, author=people["author"])
    v2 = make_version(model, author=people["author"])
    for version in (v1, v2):
        promotions.promotion_review(request=_request(model, version, people), user=people["alice"],
                                    decision="approve", comment="")
    assert _alias(model) == v2.version
    with pytest.raises(PermissionDenied):
        promotions.promotion_rollback(model=model, alias="champion", user=people["alice"], justification="x")

    back = promotions.promotion_rollback(model=model, alias="champion", user=people["owner"],
                                         justification="v2 misbehaves in production")
    assert _alias(model) == v1.version
    assert back.kind == "rollback" and back.status == PromotionStatus.APPROVED
    latest = AliasEvent.objects.filter(model=model).first()
    assert latest.via == f"approval:governance.promotionrequest:{back.pk}"

    promotions.promotion_rollback(model=model, alias="champion", user=people["owner"],
                                  justification="none fit")
    assert _alias(model) is None
    assert AliasEvent.objects.filter(model=model).first().kind == "removed"
    assert [e.action for e in audit_log].count("alias.rolled_back") == 2
    with pytest.raises(ValidationError):
        promotions.promotion_rollback(model=model, alias="champion", user=people["owner"], justification="x")


def test_withdraw_by_requester(model, people, policy):
    request = _request(model, make_version(model, author=people["author"]), people)
    with pytest.raises(PermissionDenied):
        promotions.promotion_request_withdraw(request=request, user=people["alice"])
    promotions.promotion_request_withdraw(request=request, user=people["requester"])
    request.refresh_from_db()
    assert request.status == PromotionStatus.WITHDRAWN


def test_a_version_whose_file_checks_finish_later_moves_when_ready(model, people, policy,
                                                                  django_capture_on_commit_callbacks):
    from registry.models import VersionStatus
    from registry.signals import model_version_status_changed

    version = make_version(model, author=people["author"], status=VersionStatus.PENDING_CHECKS)
    request = _request(model, version, people)
    assert request.status == PromotionStatus.CHECKS_RUNNING
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    assert _alias(model) is None
    version.status = VersionStatus.READY
    version.save(update_fields=["status"])
    with django_capture_on_commit_callbacks(execute=True):
        model_version_status_changed.send(sender=type(version), version=version,
                                          old_status=VersionStatus.PENDING_CHECKS,
                                          new_status=VersionStatus.READY)
    # Ready queues the version's fairness audit and explanation: the alias waits for them...
    assert _alias(model) is None
    from governance.models import AnalysisStatus, Explanation, FairnessReport
    from governance.signals import analysis_finished

    assert FairnessReport.objects.get(version=version).status == AnalysisStatus.QUEUED
    # ...and moves when the last one finishes, as their jobs report it.
    finished = {
        "fairness": (FairnessReport, {"task": "classification", "summary": {
            "sex": {"demographic_parity_ratio": 0.95, "equalized_odds_difference": 0.02}}}),
        "explanation": (Explanation, {"explainer": "tree", "output": "log_odds"}),
    }
    for kind, (table, fields) in finished.items():
        table.objects.filter(version=version).update(status=AnalysisStatus.SUCCEEDED, **fields)
        with django_capture_on_commit_callbacks(execute=True):
            analysis_finished.send(sender=table, version_id=version.pk, kind=kind)
    assert _alias(model) == version.version


def test_lowering_the_approvals_needed_moves_a_request_that_already_has_enough(model, people, project,
                                                                             django_capture_on_commit_callbacks):
    from governance import policies
    from governance.models import Policy

    Policy.objects.create(project=project, approvals_required=2)
    request = _request(model, make_version(model, author=people["author"]), people)
    promotions.promotion_review(request=request, user=people["alice"], decision="approve", comment="")
    assert _alias(model) is None
    with django_capture_on_commit_callbacks(execute=True):
        policies.policy_update(project=project, model=None, changes={"approvals_required": 1},
                               user=people["owner"])
    request.refresh_from_db()
    assert request.status == PromotionStatus.APPROVED and _alias(model) == 1
