"""Model card API: the generated card as JSON; editors replace its written sections."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import can_see_pii
from governance import cards
from governance.api import schema as api_schema
from registry import selectors


class ModelCardApi(APIView):
    class Input(serializers.Serializer):
        sections = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False))

    @extend_schema(responses=api_schema.ModelCardOut)
    def get(self, request, slug, name, ref):
        model = selectors.model_for_user(request.user, slug, name)
        version = selectors.version_by_ref(model, ref)
        return Response(cards.model_card_context(version, show_pii=can_see_pii(request.user, model.project)))

    @extend_schema(request=Input, responses=api_schema.ModelCardOut)
    def patch(self, request, slug, name, ref):
        """Replace the given sections (intended_use, out_of_scope_use, limitations,
        ethical_considerations, caveats); the others are kept."""
        model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
        version = selectors.version_by_ref(model, ref)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        cards.model_card_sections_update(version=version, sections=data.validated_data["sections"],
                                         user=request.user)
        return Response(cards.model_card_context(version, show_pii=can_see_pii(request.user, model.project)))
