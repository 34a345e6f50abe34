"""Promotion API: thin views that parse, check permission and call a service."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from governance import policies, promotions, selectors
from governance.api import schema as api_schema
from governance.models import PromotionRequest, Review
from registry import selectors as registry_selectors
from registry.models import ModelVersion


def _iso(value):
    return value.isoformat() if value else None


def review_output(review: Review) -> dict:
    return {
        "id": review.pk,
        "reviewer": review.reviewer.get_username() if review.reviewer_id else None,
        "decision": review.decision,
        "comment": review.comment,
        "sha256": review.version_sha256,
        "onnx_sha256": review.version_onnx_sha256,
        "created_at": _iso(review.created_at),
    }


def request_output(request: PromotionRequest) -> dict:
    policy = policies.policy_for_model(request.model)
    approvals = promotions.approvals_in_force(request) if request.version_id else []
    return {
        "id": request.pk,
        "project": request.model.project.slug,
        "model": request.model.name,
        "version": request.version.version if request.version_id else None,
        "alias": request.alias,
        "kind": request.kind,
        "status": request.status,
        "requester": request.requester.get_username() if request.requester_id else None,
        "justification": request.justification,
        "checks": request.checks,
        "reasons": request.reasons,
        "approvals_required": policy.approvals_required,
        "approvals": [r.reviewer.get_username() for r in approvals],
        "reviews": [review_output(r) for r in request.reviews.select_related("reviewer")],
        "previous_version": request.previous_version.version if request.previous_version_id else None,
        "superseded_by": request.superseded_by_id,
        "created_at": _iso(request.created_at),
        "decided_at": _iso(request.decided_at),
    }


class PromotionRequestListApi(APIView):
    class Input(serializers.Serializer):
        version = serializers.IntegerField(min_value=1, max_value=999_999_999)
        alias = serializers.CharField(max_length=64, trim_whitespace=False)
        justification = serializers.CharField(max_length=promotions.MAX_TEXT, allow_blank=True)

    @extend_schema(operation_id="v1_projects_models_promotion_requests_list",
                   responses=api_schema.PromotionRequestListOut)
    def get(self, request, slug, name):
        model = registry_selectors.model_for_user(request.user, slug, name)
        rows = (PromotionRequest.objects.filter(model=model)
                .select_related("model", "model__project", "version", "requester", "previous_version")[:200])
        return Response({"promotion_requests": [request_output(r) for r in rows]})

    @extend_schema(request=Input, responses={201: api_schema.PromotionRequestOut})
    def post(self, request, slug, name):
        """Ask for a protected alias to move to a version; stored whatever its checks say."""
        model = registry_selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        number = data.validated_data["version"]
        version = ModelVersion.objects.filter(model=model, version=number).first()
        if version is None:
            raise serializers.ValidationError({"version": f"{model.name} has no version {number}."})
        created = promotions.promotion_request_create(
            model=model, version=version, alias=data.validated_data["alias"],
            justification=data.validated_data["justification"], user=request.user)
        created.refresh_from_db()
        return Response(request_output(created), status=status.HTTP_201_CREATED)


class PromotionRequestDetailApi(APIView):
    @extend_schema(responses=api_schema.PromotionRequestOut)
    def get(self, request, request_id):
        return Response(request_output(selectors.request_for_user(request.user, request_id)))


class PromotionReviewApi(APIView):
    class Input(serializers.Serializer):
        decision = serializers.CharField(max_length=40)
        comment = serializers.CharField(max_length=promotions.MAX_TEXT, allow_blank=True, required=False,
                                        default="")

    @extend_schema(request=Input, responses={201: api_schema.PromotionReviewOut})
    def post(self, request, request_id):
        """Approve, reject (comment required) or ask for changes."""
        promotion = selectors.request_for_user(request.user, request_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        review = promotions.promotion_review(request=promotion, user=request.user,
                                             decision=data.validated_data["decision"],
                                             comment=data.validated_data["comment"])
        promotion = selectors.request_for_user(request.user, request_id)
        return Response({"review": review_output(review), "request": request_output(promotion)},
                        status=status.HTTP_201_CREATED)


class PromotionWithdrawApi(APIView):
    @extend_schema(request=None, responses=api_schema.PromotionRequestOut)
    def post(self, request, request_id):
        promotion = selectors.request_for_user(request.user, request_id)
        promotions.promotion_request_withdraw(request=promotion, user=request.user)
        return Response(request_output(selectors.request_for_user(request.user, request_id)))


class PolicyApi(APIView):
    @extend_schema(responses=api_schema.PolicyOut)
    def get(self, request, slug, name):
        model = registry_selectors.model_for_user(request.user, slug, name)
        return Response(policies.policy_as_dict(policies.policy_for_model(model)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=api_schema.PolicyOut)
    def put(self, request, slug, name):
        """Change this model's own policy (owners); fields not sent keep their value."""
        model = registry_selectors.model_for_user(request.user, slug, name, min_role=Role.OWNER)
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"body": "Send a JSON object of policy settings."})
        policy = policies.policy_update(project=model.project, model=model, changes=dict(request.data),
                                        user=request.user)
        return Response(policies.policy_as_dict(policy))
