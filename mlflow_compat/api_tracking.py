"""MLflow's tracking endpoints (/api/2.0/mlflow/experiments/*, runs/*, metrics/*) on Steward's services."""

from __future__ import annotations

import base64
import binascii
import json
import math

import orjson
from django.http import HttpResponse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts.models import Role
from core import validation as v
from experiments import search
from experiments.models import Experiment, Lifecycle, Run
from experiments.selectors import metric_history_page, runs_with_details
from mlflow_compat import context, errors, filters, output, services
from mlflow_compat.models import ExperimentState
from mlflow_compat.views_base import MlflowView, required, run_id_arg

EDITOR = Role.EDITOR
SEARCH_PAGE_MAX = search.MAX_RESULTS_LIMIT
HISTORY_PAGE_MAX = 25_000
ACTIVE_ONLY, DELETED_ONLY, ALL = "ACTIVE_ONLY", "DELETED_ONLY", "ALL"


def _view_type(value) -> str:
    value = value or ACTIVE_ONLY
    mapping = {"1": ACTIVE_ONLY, "2": DELETED_ONLY, "3": ALL, 1: ACTIVE_ONLY, 2: DELETED_ONLY, 3: ALL}
    value = mapping.get(value, value)
    if value not in (ACTIVE_ONLY, DELETED_ONLY, ALL):
        raise errors.invalid("view_type: Must be ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return value


def _page_size(value, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise errors.invalid("max_results: Must be a whole number.") from None
    if size < 1:
        raise errors.invalid("max_results: Must be at least 1.")
    # MLflow's client asks for up to 50,000 per page; it follows the token for the rest.
    return min(size, default)


def _experiment_out(experiment: Experiment) -> dict:
    return output.experiment_json(experiment, services.experiment_state(experiment))


# --- experiments ------------------------------------------------------------------------------


class ExperimentCreate(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = services.experiment_create(
            project=project, name=args.get("name"), tags=args.get("tags"), user=request.user
        )
        return Response({"experiment_id": str(experiment.pk)})


class ExperimentGet(MlflowView):
    def get(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request)
        experiment = context.experiment_for(project, required(args, "experiment_id"))
        return Response({"experiment": _experiment_out(experiment)})


class ExperimentGetByName(MlflowView):
    def get(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request)
        name = required(args, "experiment_name")
        experiment = Experiment.objects.filter(project=project, name=name).first()
        if experiment is None:
            raise errors.not_found(f"Could not find experiment with name '{name[:200]}'")
        return Response({"experiment": _experiment_out(experiment)})


class ExperimentSearch(MlflowView):
    def get(self, request, **kwargs):
        return self.post(request, **kwargs)

    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request)
        view_type = _view_type(args.get("view_type"))
        size = _page_size(args.get("max_results"), 1000)
        offset = _offset_token(args.get("page_token"))
        experiments = Experiment.objects.filter(project=project).order_by("-created_at", "-pk")
        if view_type == ACTIVE_ONLY:
            experiments = experiments.filter(lifecycle=Lifecycle.ACTIVE)
        elif view_type == DELETED_ONLY:
            experiments = experiments.filter(lifecycle=Lifecycle.DELETED)
        conditions = filters.parse(args.get("filter"), {"name"})
        states = {s.experiment_id: s for s in ExperimentState.objects.filter(experiment__project=project)}
        order = filters.order_parse(self.list_arg(request, "order_by"), EXPERIMENT_ORDER)
        found = [e for e in experiments if filters.matches(
            conditions, {"name": e.name}, output.experiment_tags(e, states.get(e.pk)))]
        if order:
            # Ties fall to the experiment id, newest first, as MLflow breaks them.
            found = filters.order_apply(found, order + [("id", True)],
                                        lambda e, field: _experiment_value(e, field, states.get(e.pk)))
        page = found[offset:offset + size + 1]
        body = {"experiments": [output.experiment_json(e, states.get(e.pk)) for e in page[:size]]}
        if len(page) > size:
            body["next_page_token"] = _offset_token_make(offset + size)
        return Response(body)


EXPERIMENT_ORDER = {"name": "name", "attribute.name": "name", "experiment_id": "id",
                    "attribute.experiment_id": "id", "creation_time": "created",
                    "attribute.creation_time": "created", "last_update_time": "updated",
                    "attribute.last_update_time": "updated"}


def _experiment_value(experiment: Experiment, field: str, state):
    if field == "name":
        return experiment.name
    if field == "id":
        return experiment.pk
    times = output.experiment_json(experiment, state)
    return times["creation_time"] if field == "created" else times["last_update_time"]


def _offset_token(token) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(data["offset"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.invalid("Invalid page token.") from None
    if offset < 0:
        raise errors.invalid("Invalid page token.")
    return offset


def _offset_token_make(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


class ExperimentUpdate(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(project, required(args, "experiment_id"))
        if args.get("new_name"):
            services.experiment_rename(experiment=experiment, new_name=args["new_name"])
        return Response({})


class ExperimentDelete(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(project, required(args, "experiment_id"))
        services.experiment_delete(experiment=experiment, user=request.user)
        return Response({})


class ExperimentRestore(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(project, required(args, "experiment_id"))
        services.experiment_restore(experiment=experiment, user=request.user)
        return Response({})


class ExperimentTagSet(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(project, required(args, "experiment_id"))
        services.experiment_tag_set(experiment=experiment, key=args.get("key"), value=args.get("value"))
        return Response({})


class ExperimentTagDelete(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(project, required(args, "experiment_id"))
        services.experiment_tag_delete(experiment=experiment, key=args.get("key"))
        return Response({})


# --- runs -------------------------------------------------------------------------------------


def _run_out(run: Run) -> dict:
    if not hasattr(run, "details"):
        runs_with_details([run])
    return output.run_json(run)


class RunCreate(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request, EDITOR)
        experiment = context.experiment_for(
            project, args.get("experiment_id") or context.DEFAULT_EXPERIMENT_ID,
            user=request.user, create_default=True,
        )
        run = services.run_create(
            project=project, experiment=experiment, user=request.user, run_name=args.get("run_name"),
            start_time=args.get("start_time"), tags=args.get("tags"),
        )
        return Response({"run": output.run_json(run)})


class RunGet(MlflowView):
    def get(self, request, **kwargs):
        run = self.run(request, run_id_arg(self.body(request)))
        return Response({"run": _run_out(run)})


class RunUpdate(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args), EDITOR)
        services.run_update(run=run, status=args.get("status"), end_time=args.get("end_time"),
                            run_name=args.get("run_name"))
        return Response({"run_info": output.run_info_json(run)})


class RunDelete(MlflowView):
    def post(self, request, **kwargs):
        run = self.run(request, run_id_arg(self.body(request)), EDITOR)
        services.run_delete(run=run, user=request.user)
        return Response({})


class RunRestore(MlflowView):
    def post(self, request, **kwargs):
        run = self.run(request, run_id_arg(self.body(request)), EDITOR)
        services.run_restore(run=run, user=request.user)
        return Response({})


class MetricLog(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args), EDITOR)
        services.metric_log(run=run, item={
            "key": args.get("key"), "value": args.get("value"), "timestamp": args.get("timestamp"),
            "step": args.get("step") or 0,
        })
        return Response({})


class ParamLog(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args), EDITOR)
        services.param_log(run=run, key=args.get("key"), value=args.get("value"))
        return Response({})


class TagSet(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args), EDITOR)
        pairs = services._pairs([{"key": args.get("key"), "value": args.get("value", "")}], "tag")
        services.tags_set(run=run, pairs=pairs)
        return Response({})


class TagDelete(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args), EDITOR)
        services.tag_delete(run=run, key=args.get("key"))
        return Response({})


class BatchLog(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args), EDITOR)
        services.batch_log(run=run, metrics=args.get("metrics"), params=args.get("params"),
                           tags=args.get("tags"))
        return Response({})


class InputsLog(MlflowView):
    """Dataset inputs (autologging sends them): checked and acknowledged. Steward links runs to
    its own dataset versions; MLflow's dataset descriptions are not stored."""

    def post(self, request, **kwargs):
        args = self.body(request)
        self.run(request, run_id_arg(args), EDITOR)
        return Response({})


class RunSearch(MlflowView):
    def post(self, request, **kwargs):
        args = self.body(request)
        project = self.project(request)
        ids = [str(i) for i in self.list_arg(request, "experiment_ids")]
        known = set()
        for experiment_id in ids:
            try:
                known.add(context.experiment_for(project, experiment_id).pk)
            except errors.MlflowError:
                continue  # MLflow answers runs of the experiments that exist
        view_type = _view_type(args.get("run_view_type"))
        order_by = self.list_arg(request, "order_by")
        size = _page_size(args.get("max_results"), SEARCH_PAGE_MAX)
        if ids and not known:
            return Response({})
        rows, token = search.runs_search_rows(
            project=project, experiment_ids=sorted(known) if ids else None,
            filter_string=args.get("filter") or "", order_by=order_by or None,
            max_results=size, page_token=args.get("page_token") or None, view_type=view_type.lower(),
            with_names=False,
        )
        body: dict = {"runs": [output.run_json(r) for r in search.runs_from_rows(rows, project=project)]}
        if token:
            body["next_page_token"] = token
        return Response(body)


class MetricHistory(MlflowView):
    def get(self, request, **kwargs):
        args = self.body(request)
        run = self.run(request, run_id_arg(args))
        key = required(args, "metric_key")
        size = _page_size(args.get("max_results"), HISTORY_PAGE_MAX)
        token = args.get("page_token")
        after = None
        if token:
            try:
                step, ts, last_id = json.loads(base64.urlsafe_b64decode(token.encode()))
                after = int(step), int(ts), int(last_id)
            except (ValueError, TypeError, binascii.Error):
                raise errors.invalid("Invalid page token.") from None
        page = metric_history_page(run=run, key=key, after=after, limit=size + 1)
        finite = math.isfinite
        body: dict = {"metrics": [
            {"key": key, "value": value if value is not None and finite(value) else v.float_out(value),
             "timestamp": ts, "step": step}
            for step, ts, value, _ in page[:size]
        ]}
        if len(page) > size:
            step, ts, _, last_id = page[size - 1]
            body["next_page_token"] = base64.urlsafe_b64encode(
                json.dumps([step, ts, last_id]).encode()).decode()
        # Tens of thousands of points: orjson writes them several times faster than DRF's renderer.
        return HttpResponse(orjson.dumps(body), content_type="application/json")


class ServerInfo(MlflowView):
    """MLflow 3 clients probe this before sending a workspace (here: a project) header."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request, **kwargs):
        return Response({
            "store_type": "SqlStore",
            "workspaces_enabled": True,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {"gateway": False},
        })


class NotFound(MlflowView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def dispatch(self, request, *args, **kwargs):
        return errors.error_response(
            errors.ENDPOINT_NOT_FOUND, f"This MLflow endpoint is not served by Steward: {request.path}"
        )
