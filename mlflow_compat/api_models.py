"""MLflow 3's logged models (/api/2.0/mlflow/logged-models) and run outputs."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone
from rest_framework.response import Response

from accounts.models import Role
from core.validation import TAG_VALUE_MAX_LENGTH
from mlflow_compat import context, errors, filters, output, services
from mlflow_compat.api_tracking import _page_size
from mlflow_compat.models import LoggedModel, LoggedModelStatus
from mlflow_compat.views_base import MlflowView, required, run_id_arg

EDITOR = Role.EDITOR


def model_artifact_uri(model: LoggedModel) -> str:
    return f"{output.run_artifact_uri(model.experiment_id, model.run_id)}/{model.artifact_path}"


def logged_model_json(model: LoggedModel) -> dict:
    return {
        "info": {
            "experiment_id": str(model.experiment_id),
            "model_id": model.id,
            "name": model.name,
            "artifact_uri": model_artifact_uri(model),
            "creation_timestamp_ms": output.ms(model.created_at),
            "last_updated_timestamp_ms": output.ms(model.updated_at),
            "model_type": model.model_type,
            "source_run_id": output.run_hex(model.run_id),
            "status": model.status,
            "status_message": model.status_message,
            "tags": [{"key": k, "value": val} for k, val in sorted(model.tags.items())],
        },
        "data": {"params": [{"key": k, "value": val} for k, val in sorted(model.params.items())],
                 "metrics": []},
    }


def _kv(items, field: str) -> dict[str, str]:
    return dict(services._pairs(items or [], field))


class _ModelView(MlflowView):
    def logged_model(self, request, model_id: str, min_role=Role.VIEWER) -> LoggedModel:
        model = LoggedModel.objects.select_related("run").filter(pk=model_id, deleted_at__isnull=True).first()
        if model is None:
            raise errors.not_found(f"Logged model with ID '{model_id[:64]}' not found.")
        self.run(request, model.run_id.hex, min_role)  # the same permission as its run
        return model


class LoggedModelCreate(_ModelView):
    def post(self, request, **kwargs):
        body = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(project, required(body, "experiment_id"))
        run_id = body.get("source_run_id")
        if not run_id:
            raise errors.invalid(
                "source_run_id: Steward keeps a model's files with the run that made it; "
                "log the model inside a run (mlflow.start_run())."
            )
        run = self.run(request, run_id, EDITOR)
        if run.experiment_id != experiment.pk:
            raise errors.invalid("source_run_id: The run belongs to another experiment.")
        model_id = f"m-{uuid.uuid4().hex}"
        name = body.get("name") or model_id
        if not isinstance(name, str) or len(name) > 250 or "/" in name or ":" in name:
            raise errors.invalid("name: A model name is at most 250 characters without '/' or ':'.")
        model = LoggedModel.objects.create(
            id=model_id, experiment=experiment, run=run, name=name,
            model_type=str(body.get("model_type") or "")[:250],
            tags=_kv(body.get("tags"), "tags"), params=_kv(body.get("params"), "params"),
        )
        return Response({"model": logged_model_json(model)})


class LoggedModelDetail(_ModelView):
    def get(self, request, model_id, **kwargs):
        return Response({"model": logged_model_json(self.logged_model(request, model_id))})

    def patch(self, request, model_id, **kwargs):
        """Finalize: the upload of the model's files ended (well or not)."""
        model = self.logged_model(request, model_id, EDITOR)
        status = self.body(request).get("status")
        if status not in LoggedModelStatus.values:
            raise errors.invalid(f"status: Must be one of {', '.join(LoggedModelStatus.values)}.")
        model.status = status
        model.updated_at = timezone.now()
        model.save(update_fields=["status", "updated_at"])
        return Response({"model": logged_model_json(model)})

    def delete(self, request, model_id, **kwargs):
        model = self.logged_model(request, model_id, EDITOR)
        model.deleted_at = timezone.now()
        model.save(update_fields=["deleted_at"])
        return Response({})


class LoggedModelTags(_ModelView):
    def patch(self, request, model_id, **kwargs):
        model = self.logged_model(request, model_id, EDITOR)
        tags = _kv(self.body(request).get("tags"), "tags")
        with transaction.atomic():
            model = LoggedModel.objects.select_for_update().get(pk=model.pk)
            model.tags = {**model.tags, **tags}
            model.updated_at = timezone.now()
            model.save(update_fields=["tags", "updated_at"])
        return Response({})


class LoggedModelTagDelete(_ModelView):
    def delete(self, request, model_id, key, **kwargs):
        model = self.logged_model(request, model_id, EDITOR)
        with transaction.atomic():
            model = LoggedModel.objects.select_for_update().get(pk=model.pk)
            if key not in model.tags:
                raise errors.not_found(f"No tag with key '{key[:250]}' on logged model {model.id}.")
            model.tags = {k: val for k, val in model.tags.items() if k != key}
            model.save(update_fields=["tags"])
        return Response({})


class LoggedModelParams(_ModelView):
    def post(self, request, model_id, **kwargs):
        model = self.logged_model(request, model_id, EDITOR)
        params = _kv(self.body(request).get("params"), "params")
        with transaction.atomic():
            model = LoggedModel.objects.select_for_update().get(pk=model.pk)
            model.params = {**model.params, **params}
            model.save(update_fields=["params"])
        return Response({})


class LoggedModelSearch(_ModelView):
    def post(self, request, **kwargs):
        body = self.body(request)
        project = self.project(request)
        ids = []
        for experiment_id in self.list_arg(request, "experiment_ids"):
            try:
                ids.append(context.experiment_for(project, str(experiment_id)).pk)
            except errors.MlflowError:
                continue
        conditions = filters.parse(body.get("filter"), {"name", "source_run_id", "status", "model_type"})
        models = [
            m for m in LoggedModel.objects.filter(experiment_id__in=ids, deleted_at__isnull=True)
            .order_by("-created_at", "id")
            if filters.matches(conditions, {"name": m.name, "source_run_id": m.run_id.hex,
                                            "status": m.status, "model_type": m.model_type}, m.tags)
        ]
        size = _page_size(body.get("max_results"), 1000) if body.get("max_results") else 100
        offset = int(body.get("page_token") or 0) if str(body.get("page_token") or "0").isdigit() else 0
        page = models[offset:offset + size + 1]
        answer = {"models": [logged_model_json(m) for m in page[:size]]}
        if len(page) > size:
            answer["next_page_token"] = str(offset + size)
        return Response(answer)


class RunOutputs(MlflowView):
    """Which logged models a run produced: they are already tied to their run here."""

    def post(self, request, **kwargs):
        body = self.body(request)
        run = self.run(request, run_id_arg(body), EDITOR)
        for item in body.get("models") or []:
            model_id = item.get("model_id") if isinstance(item, dict) else None
            if not LoggedModel.objects.filter(pk=model_id or "", run=run).exists():
                raise errors.not_found(f"Logged model '{str(model_id)[:64]}' of this run not found.")
        return Response({})


class RunLogModel(MlflowView):
    """MLflow 2's record of a logged model: kept as the run's ``mlflow.log-model.history`` tag."""

    def post(self, request, **kwargs):
        import json

        body = self.body(request)
        run = self.run(request, run_id_arg(body), EDITOR)
        model_json = body.get("model_json")
        if not isinstance(model_json, str):
            raise errors.invalid("model_json: Missing value for required parameter 'model_json'.")
        with transaction.atomic():
            history = run.tags.filter(key="mlflow.log-model.history").values_list("value", flat=True).first()
            try:
                entries = json.loads(history) if history else []
            except ValueError:
                entries = []
            entries.append(json.loads(model_json))
            value = json.dumps(entries)
            if len(value) <= TAG_VALUE_MAX_LENGTH:
                services.tags_set(run=run, pairs=[("mlflow.log-model.history", value)])
        return Response({})
