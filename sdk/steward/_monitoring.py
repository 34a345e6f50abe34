"""Monitoring from the SDK: monitors, labels, outside predictions and drift reports.

    client = steward.Client()
    monitor = client.create_monitor("credit", "credit-scorer", "champion", schedule=60)
    answer = client.predict("credit", "credit-scorer", "champion", rows, request_id=my_id)
    client.log_labels(monitor.id, [{"request_id": my_id, "row": 0, "label": 1}])
    job = client.wait_for_job(client.run_monitor(monitor.id).id)
    report = client.get_monitor_report(job["result"]["report_id"])
    report["dataset_drift"], [f["feature"] for f in report["features"] if f["drifted"]]

A request id names one predict request; its rows are 0, 1, ... in the order sent. Sending the
same request id again is taken as a retry of that request: monitoring counts the first record
logged under it and labels attach to that one, so give every distinct request its own id.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from steward._base import ClientBase
from steward._datasets import Job, _Record
from steward._registry import records_json


class Monitor(_Record):
    """A monitor: ``id``, ``project``, ``model``, ``alias``, ``schedule_minutes``, ``thresholds``..."""


class MonitorReport(_Record):
    """A drift and performance report: ``dataset_drift``, ``drift_share``, ``features``,
    ``prediction``, ``data_quality``, ``performance``..."""


def _window(window: Any) -> dict[str, Any]:
    if window is None:
        return {}
    if not isinstance(window, dict) or not set(window) <= {"hours", "predictions"}:
        raise TypeError('window is {"hours": N} or {"predictions": N}')
    return {f"window_{k}": v for k, v in window.items()}


class ClientMonitoring(ClientBase):
    def create_monitor(
        self,
        project: str,
        model: str,
        alias: str,
        reference_dataset_version: int | None = None,
        features: list[str] | None = None,
        schedule: int | None = None,
        window: dict[str, int] | None = None,
        **options: Any,
    ) -> Monitor:
        """Watch the version behind ``model``'s ``alias``. ``schedule``: run every N minutes;
        ``window``: ``{"hours": N}`` or ``{"predictions": N}`` (default: every prediction since the
        monitor was created, up to the server's cap). Other options: ``thresholds``,
        ``alert_emails``, ``webhook_url``, ``webhook_secret``, ``cooldown_minutes``, ``retrain_on_alert``,
        ``retrain_data`` (``"newest_dataset_version"`` or ``"reference_plus_labelled"``)."""
        body: dict[str, Any] = {"model": model, "alias": alias, **_window(window), **options}
        if reference_dataset_version is not None:
            body["reference_dataset_version"] = int(reference_dataset_version)
        if features is not None:
            body["features"] = list(features)
        if schedule is not None:
            body["schedule_minutes"] = int(schedule)
        return Monitor(
            self._json("POST", f"/api/v1/projects/{quote(project, safe='')}/monitors/", json_body=body)
        )

    def get_monitor(self, monitor_id: int) -> Monitor:
        """A monitor with its latest reports (without histograms) and alerts."""
        return Monitor(self._json("GET", f"/api/v1/monitors/{int(monitor_id)}/"))

    def run_monitor(self, monitor_id: int) -> Job:
        """Queue a drift and performance report; the job's result is ``{"report_id": ...}``."""
        return Job(self._json("POST", f"/api/v1/monitors/{int(monitor_id)}/run/"))

    def get_monitor_report(self, report_id: int) -> MonitorReport:
        """A report: ``dataset_drift``, ``drift_share``, ``features`` (per feature ``test``,
        ``statistic``, ``p_value``, ``psi``, ``wasserstein``, ``drifted``), ``prediction``,
        ``data_quality``, ``performance`` and ``histograms``."""
        return MonitorReport(self._json("GET", f"/api/v1/monitor-reports/{int(report_id)}/"))

    def log_labels(
        self, monitor_id: int, labels: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Labels for served predictions: ``[{"request_id", "row", "label"}]``. Sent again (a retry),
        nothing is stored twice; a new label for the same prediction replaces the old one."""
        return self._json(
            "POST",
            f"/api/v1/monitors/{int(monitor_id)}/labels/",
            json_body=list(labels),
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )

    def log_predictions(
        self, monitor_id: int, records: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Predictions a model served elsewhere made: ``[{"inputs": {column: value}, "prediction",
        "request_id"?}]``, one row each. A request id already logged is skipped."""
        items = [
            dict(r, inputs=records_json([r["inputs"]])[0]) if isinstance(r, dict) and "inputs" in r else r
            for r in records
        ]
        return self._json(
            "POST",
            f"/api/v1/monitors/{int(monitor_id)}/predictions/",
            json_body={"records": items},
            headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
        )
