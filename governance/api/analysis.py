"""Fairness and explanation API: read as soon as the version exists, re-run as an editor."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import can_see_pii
from governance import analysis
from governance.analysis_read import explanation_output, fairness_output
from governance.api import schema as api_schema
from registry import selectors


def _version(request, slug: str, name: str, ref: str, min_role: Role = Role.VIEWER):
    model = selectors.model_for_user(request.user, slug, name, min_role=min_role)
    return model, selectors.version_by_ref(model, ref)


class FairnessApi(APIView):
    @extend_schema(responses=api_schema.FairnessOut)
    def get(self, request, slug, name, ref):
        """The version's bias audit: groups, parity summary per sensitive feature, verdicts."""
        model, version = _version(request, slug, name, ref)
        return Response(fairness_output(version, show_pii=can_see_pii(request.user, model.project)))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={202: api_schema.FairnessOut})
    def post(self, request, slug, name, ref):
        """Re-run the audit; optionally on a chosen dataset version:
        {"dataset_version", "target", "sensitive_features", "positive_label"}."""
        model, version = _version(request, slug, name, ref, min_role=Role.EDITOR)
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise ValidationError({"body": "Send a JSON object (it may be empty)."})
        analysis.fairness_start(version=version, user=request.user, source=body or None)
        return Response(fairness_output(version, show_pii=can_see_pii(request.user, model.project)),
                        status=status.HTTP_202_ACCEPTED)


class ExplanationApi(APIView):
    @extend_schema(responses=api_schema.ExplanationOut)
    def get(self, request, slug, name, ref):
        """The version's SHAP explanation; ?include=beeswarm adds the beeswarm plot's data."""
        model, version = _version(request, slug, name, ref)
        return Response(explanation_output(version, show_pii=can_see_pii(request.user, model.project),
                                           beeswarm=request.query_params.get("include") == "beeswarm"))

    @extend_schema(request=None, responses={202: api_schema.ExplanationOut})
    def post(self, request, slug, name, ref):
        """Re-run the explanation."""
        model, version = _version(request, slug, name, ref, min_role=Role.EDITOR)
        analysis.explanation_start(version=version, user=request.user)
        return Response(explanation_output(version, show_pii=can_see_pii(request.user, model.project)),
                        status=status.HTTP_202_ACCEPTED)


class ExplanationRowsApi(APIView):
    @extend_schema(request=OpenApiTypes.OBJECT, responses=api_schema.ExplanationRowsOut)
    def post(self, request, slug, name, ref):
        """Explain up to 20 rows ({"records": [...]} or {"columns": {...}}) with the explainer and
        background of the version's stored explanation."""
        _, version = _version(request, slug, name, ref)
        return Response(analysis.explanation_for_records(version=version, body=request.data))
