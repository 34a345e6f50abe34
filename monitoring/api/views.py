"""Monitoring API: thin views that parse, check permission and call a service."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.json_input import JSONParser
from accounts.models import Role
from accounts.permissions import project_for_user
from datasets.models import DatasetVersion
from experiments.api import schema as tracking_schema
from experiments.api.views import job_output
from experiments.services import idempotent
from monitoring import selectors, services
from monitoring.api import schema as api_schema
from monitoring.models import Alert, Monitor, MonitorReport

IDEMPOTENCY = [OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)]


def _iso(value):
    return value.isoformat() if value else None


def monitor_output(monitor: Monitor) -> dict:
    return {
        "id": monitor.pk,
        "project": monitor.project.slug,
        "model": monitor.model.name,
        "alias": monitor.alias,
        "reference_dataset_version": monitor.reference_dataset_version_id,
        "features": monitor.features,
        "schedule_minutes": monitor.schedule_minutes,
        "window_hours": monitor.window_hours,
        "window_predictions": monitor.window_predictions,
        "thresholds": {name: monitor.threshold(name) for name in sorted(services.DEFAULT_THRESHOLDS)},
        "alert_emails": monitor.alert_emails,
        "webhook_url": monitor.webhook_url,
        "cooldown_minutes": monitor.cooldown_minutes,
        "retrain_on_alert": monitor.retrain_on_alert,
        "retrain_data": monitor.retrain_data,
        "created_at": _iso(monitor.created_at),
    }


def report_output(report: MonitorReport, *, hidden: frozenset[str] | None) -> dict:
    """A report with its histograms but those of the ``hidden`` features
    (selectors.monitor_pii_hidden); without histograms when ``hidden`` is None."""
    body = {
        "id": report.pk,
        "monitor_id": report.monitor_id,
        "status": report.status,
        "model_versions": report.model_versions,
        "reference_dataset_version": report.reference_dataset_version_id,
        "window_start": _iso(report.window_start),
        "window_end": _iso(report.window_end),
        "reference_rows": report.reference_rows,
        "current_rows": report.current_rows,
        "dataset_drift": report.dataset_drift,
        "drift_share": report.drift_share,
        "features": report.features,
        "prediction": report.prediction,
        "data_quality": report.data_quality,
        "performance": report.performance,
        "seconds": report.seconds,
        "created_at": _iso(report.created_at),
    }
    if hidden is not None:
        body["histograms"] = selectors.histograms_shown(report.histograms, hidden)
    return body


def alert_output(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "monitor_id": alert.monitor_id,
        "kind": alert.kind,
        "status": alert.status,
        "message": alert.message,
        "details": alert.details,
        "report_id": alert.report_id,
        "occurrences": alert.occurrences,
        "opened_at": _iso(alert.opened_at),
        "last_seen_at": _iso(alert.last_seen_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "resolved_at": _iso(alert.resolved_at),
    }


class MonitorListApi(APIView):
    class Input(serializers.Serializer):
        model = serializers.JSONField()
        alias = serializers.JSONField()
        reference_dataset_version = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**63 - 1
        )
        features = serializers.JSONField(required=False)
        schedule_minutes = serializers.JSONField(required=False)
        window_hours = serializers.JSONField(required=False)
        window_predictions = serializers.JSONField(required=False)
        thresholds = serializers.JSONField(required=False)
        alert_emails = serializers.JSONField(required=False)
        webhook_url = serializers.JSONField(required=False)
        webhook_secret = serializers.JSONField(required=False)
        cooldown_minutes = serializers.JSONField(required=False)
        retrain_on_alert = serializers.JSONField(required=False)
        retrain_data = serializers.JSONField(required=False)

    @extend_schema(operation_id="v1_projects_monitors_list", responses=api_schema.MonitorListOut)
    def get(self, request, slug):
        project = project_for_user(request.user, slug)
        monitors = Monitor.objects.filter(project=project).select_related("project", "model")
        return Response({"monitors": [monitor_output(m) for m in monitors]})

    @extend_schema(request=Input, responses={201: api_schema.MonitorOut})
    def post(self, request, slug):
        project = project_for_user(request.user, slug, min_role=Role.EDITOR)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        reference_id = fields.pop("reference_dataset_version", None)
        reference = None
        if reference_id is not None:
            reference = (
                DatasetVersion.objects.select_related("dataset")
                .filter(pk=reference_id, dataset__project=project)
                .first()
            )
            if reference is None:
                raise services.ValidationError(
                    {"reference_dataset_version": "No such dataset version in this project."}
                )
        monitor = services.monitor_create(
            project=project,
            model_name=fields.pop("model"),
            alias=fields.pop("alias"),
            user=request.user,
            reference_dataset_version=reference,
            **fields,
        )
        return Response(monitor_output(monitor), status=status.HTTP_201_CREATED)


class MonitorDetailApi(APIView):
    @extend_schema(responses=api_schema.MonitorDetailOut)
    def get(self, request, monitor_id):
        monitor = selectors.monitor_for_user(request.user, monitor_id)
        reports = monitor.reports.all()[:50]
        return Response(
            monitor_output(monitor)
            | {
                "reports": [report_output(r, hidden=None) for r in reports],
                "alerts": [alert_output(a) for a in monitor.alerts.all()[:50]],
            }
        )

    @extend_schema(request=OpenApiTypes.OBJECT, responses=api_schema.MonitorOut)
    def patch(self, request, monitor_id):
        """Change thresholds, schedule, window, features, alert channels or the retraining trigger."""
        monitor = selectors.monitor_for_user(request.user, monitor_id, min_role=Role.EDITOR)
        monitor = services.monitor_update(monitor=monitor, changes=request.data, user=request.user)
        return Response(monitor_output(monitor))

    @extend_schema(responses={204: None})
    def delete(self, request, monitor_id):
        monitor = selectors.monitor_for_user(request.user, monitor_id, min_role=Role.EDITOR)
        services.monitor_delete(monitor=monitor, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MonitorRunApi(APIView):
    @extend_schema(request=None, responses={202: tracking_schema.JobOut})
    def post(self, request, monitor_id):
        """Queue a drift and performance report; the job's result is ``{"report_id": ...}``."""
        monitor = selectors.monitor_for_user(request.user, monitor_id, min_role=Role.EDITOR)
        job = services.monitor_run_start(monitor=monitor, user=request.user)
        return Response(job_output(job), status=status.HTTP_202_ACCEPTED)


class LabelsApi(APIView):
    """Labels for served predictions, by (request_id, row): a JSON list, or a CSV file
    (multipart ``file`` with a ``request_id,row,label`` header). A label sent again for the
    same prediction replaces the earlier one; with an Idempotency-Key a retried request is
    answered as the first was."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(request=OpenApiTypes.OBJECT, parameters=IDEMPOTENCY,
                   responses={201: api_schema.LabelsLoggedOut})
    def post(self, request, monitor_id):
        monitor = selectors.monitor_for_user(request.user, monitor_id, min_role=Role.EDITOR)
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            if upload.size > 50 * 1024 * 1024:
                raise services.ValidationError({"file": "At most 50 MB per CSV."})
            body = services.labels_csv_parse(upload.read())
        else:
            body = request.data
        labels = services.labels_parse(body)

        def work():
            return status.HTTP_201_CREATED, services.labels_log(monitor=monitor, labels=labels)

        code, answer = idempotent(
            user=request.user,
            key=request.headers.get("Idempotency-Key"),
            scope=f"labels:{monitor.pk}",
            body=body,
            work=work,
        )
        return Response(answer, status=code)


class PredictionsApi(APIView):
    """Predictions a model served elsewhere made, logged for this monitor's alias."""

    @extend_schema(request=OpenApiTypes.OBJECT, parameters=IDEMPOTENCY,
                   responses={201: api_schema.PredictionsLoggedOut})
    def post(self, request, monitor_id):
        monitor = selectors.monitor_for_user(request.user, monitor_id, min_role=Role.EDITOR)

        def work():
            return status.HTTP_201_CREATED, services.predictions_log(monitor=monitor, records=request.data)

        code, answer = idempotent(
            user=request.user,
            key=request.headers.get("Idempotency-Key"),
            scope=f"predictions:{monitor.pk}",
            body=request.data,
            work=work,
        )
        return Response(answer, status=code)


class ReportDetailApi(APIView):
    @extend_schema(responses=api_schema.ReportOut)
    def get(self, request, report_id):
        report = selectors.report_for_user(request.user, report_id)
        hidden = selectors.monitor_pii_hidden(request.user, report.monitor)
        return Response(report_output(report, hidden=hidden))


class AlertListApi(APIView):
    @extend_schema(responses=api_schema.AlertListOut)
    def get(self, request, monitor_id):
        monitor = selectors.monitor_for_user(request.user, monitor_id)
        return Response({"alerts": [alert_output(a) for a in monitor.alerts.all()[:200]]})


class AlertActionApi(APIView):
    @extend_schema(request=None, responses=api_schema.AlertOut)
    def post(self, request, alert_id, action):
        alert = selectors.alert_for_user(request.user, alert_id, min_role=Role.EDITOR)
        if action == "acknowledge":
            alert = services.alert_acknowledge(alert=alert, user=request.user)
        elif action == "resolve":
            alert = services.alert_resolve(alert=alert, user=request.user)
        else:
            raise Http404("No such action.")
        return Response(alert_output(alert))
