"""Registry and serving API: thin views that parse, check permission and call a service."""

from __future__ import annotations

import json
import time

import orjson
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import throttling
from accounts.authentication import request_bearer_token
from accounts.json_input import json_parse
from accounts.models import Role
from accounts.permissions import project_for_user
from accounts.selectors import pii_hidden, pii_mask_mapping
from core.api_errors import api_exception_handler
from core.errors import AuthenticationFailed, DomainError
from datasets.models import DatasetVersion
from experiments.api import schema as tracking_schema
from experiments.api.views import job_output
from experiments.selectors import run_for_user
from registry import selectors, services, serving
from registry.api import schema as api_schema
from registry.loading import pickle_trust, trusts_in_force
from registry.models import ModelVersion, RegisteredModel


def _iso(value):
    return value.isoformat() if value else None


def model_output(model: RegisteredModel) -> dict:
    aliases = dict(model.aliases.values_list("name", "version__version"))
    latest = model.versions.order_by("-version").values_list("version", flat=True).first()
    return {
        "name": model.name,
        "project": model.project.slug,
        "description": model.description,
        "owner": model.owner.username if model.owner_id else None,
        "tags": model.tags,
        "protected_aliases": model.protected_aliases,
        "log_pii": model.log_pii,
        "aliases": aliases,
        "latest_version": latest,
        "created_at": _iso(model.created_at),
        "updated_at": _iso(model.updated_at),
    }


def signature_shown(version: ModelVersion, user) -> dict:
    """The signature, without the fill values (they are data values) of columns ``user`` may not
    see; of a model trained on PII data, every fill is such a value."""
    signature = version.signature or {}
    fills = signature.get("onnx_fills")
    if not fills:
        return signature
    hidden = pii_hidden(user, version.model.project, signature.get("columns", []),
                        names=fills if version.holds_pii else ())
    if not hidden:
        return signature
    return signature | {"onnx_fills": pii_mask_mapping(fills, hidden)}


def version_output(version: ModelVersion, aliases: list[str] | None = None, *, user) -> dict:
    """A version as ``user`` may see it."""
    if aliases is None:
        aliases = list(version.aliases.values_list("name", flat=True))
    body = {
        "model": version.model.name,
        "version": version.version,
        "status": version.status,
        "status_message": version.status_message,
        "run_id": str(version.run_id),
        "artifact_path": version.artifact_path,
        "sha256": version.sha256,
        "size": version.size,
        "model_format": version.model_format,
        "flavour": version.flavour,
        "pii": version.holds_pii,
        "signature": signature_shown(version, user),
        "output_kind": version.output_kind,
        "classes": version.classes,
        "metrics": version.metrics,
        "runtime": version.runtime,
        "runtime_reason": version.runtime_reason,
        "verification": version.verification,
        "onnx_sha256": version.onnx_sha256 or None,
        "aliases": sorted(aliases),
        "author": version.author.username if version.author_id else None,
        "description": version.description,
        "check_job_id": version.check_job_id,
        "created_at": _iso(version.created_at),
        "checked_at": _iso(version.checked_at),
    }
    if version.is_pickle:
        trust = pickle_trust(version)
        body["trusted"] = (
            {"by": trust.trusted_by.username if trust.trusted_by_id else None, "at": _iso(trust.trusted_at)}
            if trust else None
        )
    return body


class ModelListApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)

    @extend_schema(operation_id="v1_projects_models_list", responses=api_schema.ModelListOut)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        models = RegisteredModel.objects.filter(project=project).select_related("owner", "project")
        return Response({"models": [model_output(m) for m in models]})

    @extend_schema(request=Input, responses={201: api_schema.ModelOut})
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        model = services.registered_model_create(project=project, user=request.user, **data.validated_data)
        return Response(model_output(model), status=status.HTTP_201_CREATED)


class ModelDetailApi(APIView):
    class Input(serializers.Serializer):
        description = serializers.CharField(required=False, allow_blank=True)
        tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
        log_pii = serializers.BooleanField(required=False)
        protected_aliases = serializers.ListField(child=serializers.CharField(), required=False)

    @extend_schema(responses=api_schema.ModelOut)
    def get(self, request, slug, name):
        return Response(model_output(selectors.model_for_user(request.user, slug, name)))

    @extend_schema(request=Input, responses=api_schema.ModelOut)
    def patch(self, request, slug, name):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        # Which aliases need an approval, and whether PII reaches the logs, are the owners' call.
        needs_owner = "protected_aliases" in fields or "log_pii" in fields
        model = selectors.model_for_user(
            request.user, slug, name, min_role=Role.OWNER if needs_owner else Role.EDITOR
        )
        protected = fields.pop("protected_aliases", None)
        if protected is not None:
            model = services.model_protected_aliases_set(model=model, aliases=protected, user=request.user)
        services.registered_model_update(model=model, user=request.user, **fields)
        return Response(model_output(model))


class VersionListApi(APIView):
    class Input(serializers.Serializer):
        run_id = serializers.CharField(max_length=64)
        artifact_path = serializers.CharField(max_length=2048, default="model", trim_whitespace=False)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        pii_columns = serializers.ListField(child=serializers.CharField(), required=False)

    @extend_schema(operation_id="v1_projects_models_versions_list", responses=api_schema.ModelVersionListOut)
    def get(self, request, slug, name):
        model = selectors.model_for_user(request.user, slug, name)
        by_version = selectors.aliases_by_version(model)
        versions = ModelVersion.objects.filter(model=model).select_related("author", "model", "artifact")
        return Response({"versions": [version_output(v, by_version.get(v.pk, []), user=request.user)
                                      for v in versions]})

    @extend_schema(request=Input, responses={201: api_schema.ModelVersionOut})
    def post(self, request, slug, name):
        """Register a run's model artifact as the next version (the model is created if new)."""
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_for_user(request.user, data.validated_data["run_id"])
        version = services.model_version_create(
            project=project, model_name=name, run=run, user=request.user,
            artifact_path=data.validated_data["artifact_path"],
            description=data.validated_data["description"],
            pii_columns=data.validated_data.get("pii_columns"),
        )
        return Response(version_output(version, [], user=request.user),
                        status=status.HTTP_201_CREATED)


class VersionDetailApi(APIView):
    @extend_schema(responses=api_schema.ModelVersionOut)
    def get(self, request, slug, name, ref):
        model = selectors.model_for_user(request.user, slug, name)
        version = selectors.version_by_ref(model, ref)
        return Response(version_output(version, user=request.user))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug, name, ref):
        """Delete a version (editor); refused with 409 while an alias points at it."""
        model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
        services.model_version_delete(version=selectors.version_by_ref(model, ref), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VersionCheckJobApi(APIView):
    @extend_schema(responses=tracking_schema.JobOut)
    def get(self, request, slug, name, ref):
        model = selectors.model_for_user(request.user, slug, name)
        version = selectors.version_by_ref(model, ref)
        if version.check_job is None:
            raise Http404("This version has no check job.")
        return Response(job_output(version.check_job))


def alias_event_output(event) -> dict:
    return {
        "alias": event.alias,
        "kind": event.kind,
        "version": event.version.version if event.version_id else None,
        "previous_version": event.previous_version.version if event.previous_version_id else None,
        "actor": event.actor.username if event.actor_id else None,
        "via": event.via,
        "at": _iso(event.created_at),
    }


class BatchScoreApi(APIView):
    class Input(serializers.Serializer):
        dataset_version_id = serializers.IntegerField(min_value=1)

    @extend_schema(request=Input, responses={202: tracking_schema.JobOut})
    def post(self, request, slug, name, ref):
        """Queue a job scoring every row of a dataset version; the scores become a new dataset version."""
        model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
        version = selectors.version_by_ref(model, ref)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        dataset_version = DatasetVersion.objects.select_related("dataset").filter(
            pk=data.validated_data["dataset_version_id"], dataset__project=model.project
        ).first()
        if dataset_version is None:
            raise Http404("No such dataset version in this project.")
        job = services.batch_score_start(version=version, dataset_version=dataset_version, user=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class AliasListApi(APIView):
    @extend_schema(responses=api_schema.AliasListOut)
    def get(self, request, slug, name):
        model = selectors.model_for_user(request.user, slug, name)
        current = {a.name: a.version.version for a in model.aliases.select_related("version")}
        return Response({
            "aliases": current,
            "protected": model.protected_aliases,
            "history": [alias_event_output(e) for e in selectors.alias_history(model)],
        })


class AliasDetailApi(APIView):
    class Input(serializers.Serializer):
        version = serializers.IntegerField(min_value=1)

    @extend_schema(request=Input, responses=api_schema.AliasSetOut)
    def put(self, request, slug, name, alias):
        model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        version = ModelVersion.objects.filter(model=model, version=data.validated_data["version"]).first()
        if version is None:
            raise serializers.ValidationError({"version": f"{model.name} has no version "
                                                          f"{data.validated_data['version']}."})
        services.alias_set(model=model, alias=alias, version=version, user=request.user)
        return Response({"alias": alias, "version": version.version})

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug, name, alias):
        model = selectors.model_for_user(request.user, slug, name, min_role=Role.EDITOR)
        services.alias_remove(model=model, alias=alias, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrustedHashApi(APIView):
    class Input(serializers.Serializer):
        sha256 = serializers.CharField(max_length=64)
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)

    @extend_schema(responses=api_schema.TrustedHashListOut)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        rows = trusts_in_force().filter(project=project)
        return Response({"trusted": [
            {"sha256": t.sha256, "by": t.trusted_by.username if t.trusted_by_id else None,
             "at": _iso(t.trusted_at), "note": t.note} for t in rows
        ]})

    @extend_schema(request=Input, responses={201: api_schema.TrustedHashAddedOut})
    def post(self, request, slug):
        """Trust one pickle/joblib sha256 in the project: staff only, and only with ALLOW_PICKLE_MODELS."""
        # Any member sees the project (others get 404); the service refuses all but staff.
        project = project_for_user(request.user, slug)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        trusted = services.trusted_hash_add(project=project, user=request.user, **data.validated_data)
        return Response({"sha256": trusted.sha256, "by": trusted.trusted_by.username,
                         "at": _iso(trusted.trusted_at)}, status=status.HTTP_201_CREATED)


class CompareApi(APIView):
    class Query(serializers.Serializer):
        a = serializers.CharField(max_length=64)
        b = serializers.CharField(max_length=64)

    @extend_schema(parameters=[Query], responses=api_schema.CompareOut)
    def get(self, request, slug, name):
        model = selectors.model_for_user(request.user, slug, name)
        query = self.Query(data=request.query_params)
        query.is_valid(raise_exception=True)
        a = selectors.version_by_ref(model, query.validated_data["a"])
        b = selectors.version_by_ref(model, query.validated_data["b"])
        return Response(selectors.versions_compare(a, b))


def _error_response(exc: Exception) -> HttpResponse:
    # The same handler as every DRF view, so errors keep Steward's one JSON shape.
    response = api_exception_handler(exc, {})
    if response is None:
        raise exc
    answer = HttpResponse(json.dumps(response.data), status=response.status_code,
                          content_type="application/json")
    for header, value in response.items():  # Retry-After on a 429
        if header.lower() != "content-type":
            answer[header] = value
    return answer


def _session_user(request):
    """The page's "try it" form: the session's user, with the same CSRF check DRF applies."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    reason = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
    if reason is not None:
        raise exceptions.PermissionDenied("CSRF check failed; reload the page.")
    return user


@csrf_exempt  # enforced above for session requests; a bearer token is not sent by browsers
@require_POST
def predict_view(request, slug: str, name: str, ref: str) -> HttpResponse:
    """POST /api/v1/serve/<project>/<model>/<alias-or-version>/predict (documented in OpenAPI by
    ``mlplatform.openapi.serving_endpoint``).

    A plain Django view rather than a DRF one: it runs for every prediction, and
    DRF's request wrapping, negotiation and rendering cost more than the model.
    Authentication, permission and errors are the same as everywhere else.
    """
    started = time.perf_counter()
    target = None
    try:
        # Parsed as for every other endpoint: another scheme is left to the session.
        token = request_bearer_token(request)
        user = None if token is not None else _session_user(request)
        try:
            target = serving.serving_target_resolve(slug=slug, model_name=name, ref=ref, token=token,
                                                    user=user)
        except AuthenticationFailed:
            throttling.token_failure_record(request)  # as BearerTokenAuthentication counts it
            raise
        # NaN literals are read: the signature check then refuses them naming the column.
        data = json_parse(request.body, allow_nan=True)
        body = serving.predict(target=target, body=data, request_id=request.headers.get("X-Request-ID"))
    except (exceptions.APIException, DomainError, DjangoValidationError, Http404, PermissionDenied,
            RequestDataTooBig) as exc:
        if target is not None:
            serving.serving_observe(target.version_id, 0, time.perf_counter() - started, "refused")
        return _error_response(exc)
    except Exception:
        if target is not None:
            serving.serving_observe(target.version_id, 0, time.perf_counter() - started, "failed")
        raise
    answer = HttpResponse(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                          content_type="application/json")
    answer["X-Request-ID"] = body["request_id"]
    serving.serving_observe(target.version_id, len(body["predictions"]), time.perf_counter() - started, "ok")
    return answer
