"""Run search API: the same search by GET (query string) or POST (JSON body)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import project_for_user
from experiments import search
from experiments.api import run_output


class RunSearchApi(APIView):
    class Input(serializers.Serializer):
        experiment = serializers.ListField(
            child=serializers.CharField(max_length=200), required=False, max_length=100,
            help_text="Experiment name(s); all experiments of the project when left out.",
        )
        filter = serializers.CharField(
            required=False, allow_blank=True, default="", trim_whitespace=False,
            help_text="e.g. metrics.acc > 0.9 and params.model = 'rf'",
        )
        order_by = serializers.ListField(
            child=serializers.CharField(), required=False, default=list,
            help_text="e.g. ['metrics.acc DESC', 'attributes.start_time']",
        )
        max_results = serializers.IntegerField(
            required=False, min_value=1, max_value=search.MAX_RESULTS_LIMIT,
            default=search.DEFAULT_MAX_RESULTS,
        )
        page_token = serializers.CharField(required=False, allow_blank=True, allow_null=True)

    def _search(self, request, slug: str, data: dict) -> Response:
        project = project_for_user(request.user, slug)
        query = self.Input(data=data)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        names = params.get("experiment")
        runs, next_token = search.runs_search(
            project=project,
            experiment_ids=search.experiment_ids_for(project=project, names=names) if names else None,
            filter_string=params["filter"],
            order_by=params["order_by"],
            max_results=params["max_results"],
            page_token=params.get("page_token") or None,
        )
        return Response({"runs": [run_output(r) for r in runs], "next_page_token": next_token})

    @extend_schema(
        operation_id="runs_search",
        parameters=[
            OpenApiParameter("experiment", str, many=True),
            OpenApiParameter("filter", str),
            OpenApiParameter("order_by", str, many=True),
            OpenApiParameter("max_results", int),
            OpenApiParameter("page_token", str),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, slug):
        q = request.query_params
        # An empty field of an HTML form means "not given".
        data: dict = {key: q[key] for key in ("filter", "max_results", "page_token") if q.get(key)}
        for key in ("experiment", "order_by"):
            values = [value for value in q.getlist(key) if value]
            if values:
                data[key] = values
        return self._search(request, slug, data)

    @extend_schema(operation_id="runs_search_post", request=Input, responses=OpenApiTypes.OBJECT)
    def post(self, request, slug):
        if not isinstance(request.data, dict):
            raise ValidationError({"body": "Must be a JSON object."})
        data = dict(request.data)
        # One name or one sort key may be given as a plain string.
        for key in ("experiment", "order_by"):
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
        return self._search(request, slug, data)
