"""API of the audit log and of protection change requests: thin views over governance services."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import project_for_user
from governance import protection
from governance.api import schema as api_schema
from governance.audit import audit_event_output, audit_events_page, audit_events_query, audit_filters_clean
from governance.models import ProtectionChangeRequest
from registry import selectors

AUDIT_PARAMETERS = [
    OpenApiParameter("action", str, description="An action ('alias.moved') or a group of them ('alias')."),
    OpenApiParameter("actor", str, description="The actor's username."),
    OpenApiParameter("object_type", str, description="e.g. 'registry.ModelAlias'."),
    OpenApiParameter("object_id", str),
    OpenApiParameter("since", str, description="A date (YYYY-MM-DD) or ISO date and time."),
    OpenApiParameter("until", str, description="A date (the whole day is included) or ISO date and time."),
    OpenApiParameter("max_results", int, description="1-500, default 50."),
    OpenApiParameter("page_token", str, description="next_page_token of the previous page."),
]


def _audit_page(request, *, project_id: int | None, all_projects: bool = False) -> Response:
    filters = audit_filters_clean(request.query_params)
    events = audit_events_query(project_id=project_id, filters=filters, all_projects=all_projects)
    rows, token = audit_events_page(events, filters)
    return Response({"events": [audit_event_output(e) for e in rows], "next_page_token": token})


class ProjectAuditLogApi(APIView):
    @extend_schema(parameters=AUDIT_PARAMETERS, responses=api_schema.AuditPageOut)
    def get(self, request, slug):
        """The project's audit events, newest first: any member reads them."""
        project = project_for_user(request.user, slug)
        return _audit_page(request, project_id=project.pk)


class AuditLogApi(APIView):
    @extend_schema(parameters=AUDIT_PARAMETERS, responses=api_schema.AuditPageOut)
    def get(self, request):
        """Every audit event, including those of no project (tokens): instance administrators only."""
        if not request.user.is_staff:
            raise PermissionDenied("The whole audit log is for instance administrators; "
                                   "members read their project's at /api/v1/projects/<slug>/audit-log/.")
        return _audit_page(request, project_id=None, all_projects=True)


class ProtectionRequestListApi(APIView):
    class Input(serializers.Serializer):
        alias = serializers.CharField(max_length=64)
        justification = serializers.CharField(max_length=protection.MAX_TEXT)

    @extend_schema(responses=api_schema.ProtectionChangeListOut)
    def get(self, request, slug, name):
        model = selectors.model_for_user(request.user, slug, name)
        changes = ProtectionChangeRequest.objects.filter(model=model).select_related(
            "model__project", "requested_by", "decided_by")
        return Response({"requests": [protection.protection_change_output(c) for c in changes]})

    @extend_schema(request=Input, responses={201: api_schema.ProtectionChangeOut})
    def post(self, request, slug, name):
        """Ask to take an alias off the protected list; a reviewer other than you decides."""
        model = selectors.model_for_user(request.user, slug, name, min_role=Role.OWNER)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        change = protection.protection_change_request_create(model=model, user=request.user,
                                                             **data.validated_data)
        return Response(protection.protection_change_output(change), status=status.HTTP_201_CREATED)


class ProtectionRequestDetailApi(APIView):
    @extend_schema(responses=api_schema.ProtectionChangeOut)
    def get(self, request, change_id: int):
        change = protection.protection_change_for_user(request.user, change_id)
        return Response(protection.protection_change_output(change))


class ProtectionRequestDecisionApi(APIView):
    class Input(serializers.Serializer):
        decision = serializers.ChoiceField(choices=protection.DECISIONS)
        comment = serializers.CharField(max_length=protection.MAX_TEXT, required=False, allow_blank=True,
                                        default="")

    @extend_schema(request=Input, responses=api_schema.ProtectionChangeOut)
    def post(self, request, change_id: int):
        """Approve (the alias loses its protection) or reject (a comment is required)."""
        change = protection.protection_change_for_user(request.user, change_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        change = protection.protection_change_request_decide(change=change, user=request.user,
                                                             **data.validated_data)
        return Response(protection.protection_change_output(change))


class ProtectionRequestWithdrawApi(APIView):
    @extend_schema(request=None, responses=api_schema.ProtectionChangeOut)
    def post(self, request, change_id: int):
        change = protection.protection_change_for_user(request.user, change_id)
        change = protection.protection_change_request_withdraw(change=change, user=request.user)
        return Response(protection.protection_change_output(change))
