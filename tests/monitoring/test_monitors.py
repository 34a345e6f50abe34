"""Monitors end to end in one process: traffic through serving, drift and performance reports,
labels, alerts and their de-duplication."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail

from core import jobs
from monitoring import services
from monitoring.models import Alert, AlertDelivery, Label, Monitor, MonitorReport
from tests.monitoring.conftest import credit_frame, predict, send_traffic

pytestmark = pytest.mark.django_db

SHIFT = {"income": 25_000, "region": [0.05, 0.05, 0.2, 0.7]}


def create(client, project, **fields):
    body = {"model": "scorer", "alias": "live", **fields}
    return client.post(f"/api/v1/projects/{project.slug}/monitors/", body, format="json")


def run_report(client, monitor_id) -> dict:
    response = client.post(f"/api/v1/monitors/{monitor_id}/run/")
    assert response.status_code == 202, response.json()
    job_id = response.json()["id"]
    services.drift_report_compute(job_id=job_id)
    job = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert job["status"] == "succeeded", job
    assert set(job["result"]) >= {"report_id"}
    report = client.get(f"/api/v1/monitor-reports/{job['result']['report_id']}/")
    assert report.status_code == 200
    return report.json()


@pytest.fixture
def monitor(editor, project, served):
    response = create(editor, project)
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_monitor_defaults_to_the_training_data_and_the_signature_columns(monitor, served):
    assert monitor["reference_dataset_version"] is None
    stored = Monitor.objects.get(pk=monitor["id"])
    assert stored.features == []
    assert monitor["thresholds"]["significance"] == 0.05 and monitor["thresholds"]["psi"] == 0.1


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"alias": "nope"}, "alias"),
        ({"model": "missing"}, "model"),
        ({"features": ["income", "shoe size"]}, "features"),
        ({"window_hours": 0}, "window_hours"),
        ({"window_hours": 2, "window_predictions": 100}, "window"),
        ({"thresholds": {"psi": -1}}, "thresholds.psi"),
        ({"thresholds": {"luck": 1}}, "thresholds.luck"),
        ({"alert_emails": ["not-an-address"]}, "alert_emails"),
        ({"webhook_url": "ftp://example.com/x", "webhook_secret": "s" * 20}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9000/hook", "webhook_secret": "s" * 20}, "webhook_url"),
        ({"webhook_url": "http://10.1.2.3/hook", "webhook_secret": "s" * 20}, "webhook_url"),
        (
            {"webhook_url": "http://169.254.169.254/latest/meta-data", "webhook_secret": "s" * 20},
            "webhook_url",
        ),
        ({"webhook_url": "http://localhost:8000/hook", "webhook_secret": "s" * 20}, "webhook_url"),
        ({"webhook_url": "http://[::1]/hook", "webhook_secret": "s" * 20}, "webhook_url"),
        ({"schedule_minutes": "often"}, "schedule_minutes"),
    ],
)
def test_bad_monitor_settings_are_a_400_naming_the_field(editor, project, served, fields, field):
    response = create(editor, project, **fields)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not Monitor.objects.exists()


def test_only_members_see_monitors_and_only_editors_change_them(monitor, project, viewer, outsider):
    assert viewer.get(f"/api/v1/monitors/{monitor['id']}/").status_code == 200
    assert viewer.post(f"/api/v1/monitors/{monitor['id']}/run/").status_code == 403
    assert create(viewer, project).status_code == 403
    assert outsider.get(f"/api/v1/monitors/{monitor['id']}/").status_code == 404
    assert outsider.post(f"/api/v1/monitors/{monitor['id']}/labels/", [], format="json").status_code == 404
    assert outsider.get(f"/api/v1/projects/{project.slug}/monitors/").status_code == 404


def test_a_schedule_makes_a_periodic_task(editor, project, served):
    from django_celery_beat.models import PeriodicTask

    body = create(editor, project, schedule_minutes=30).json()
    task = PeriodicTask.objects.get(name=f"monitor-{body['id']}")
    assert task.task == "monitoring.tasks.monitor_scheduled_run_task" and task.interval.every == 30
    assert editor.delete(f"/api/v1/monitors/{body['id']}/").status_code == 204
    assert not PeriodicTask.objects.filter(name=f"monitor-{body['id']}").exists()


def test_no_drift_on_traffic_from_the_training_distribution(editor, project, monitor):
    send_traffic(editor, project, credit_frame(rows=800, seed=14))
    report = run_report(editor, monitor["id"])
    assert report["status"] == "ok" and report["current_rows"] == 800
    assert report["dataset_drift"] is False
    assert [f["feature"] for f in report["features"] if f["drifted"]] == []
    kinds = {f["feature"]: (f["kind"], f["test"]) for f in report["features"]}
    assert kinds == {
        "income": ("numerical", "ks"),
        "age": ("numerical", "ks"),
        "debt": ("numerical", "ks"),
        "region": ("categorical", "chi2"),
    }
    assert report["histograms"]["income"]["reference"] and report["histograms"]["region"]["labels"]
    assert report["prediction"]["compared"] == "default"
    assert not Alert.objects.exists()


def test_exactly_the_shifted_features_drift_and_an_alert_opens_once(editor, project, monitor, settings):
    Monitor.objects.filter(pk=monitor["id"]).update(alert_emails=["ops@example.com"])
    with_shift = credit_frame(rows=800, seed=12, shift=SHIFT)
    send_traffic(editor, project, with_shift)
    report = run_report(editor, monitor["id"])
    assert sorted(f["feature"] for f in report["features"] if f["drifted"]) == ["income", "region"]
    assert report["drift_share"] == 0.5 and report["dataset_drift"] is True
    assert report["data_quality"]["features"]["income"]["out_of_range"] >= 0
    alert = Alert.objects.get()
    assert alert.kind == "drift" and alert.status == "open" and "income" in alert.message
    services.alert_notify(alert_id=alert.pk)
    assert len(mail.outbox) == 1 and "drift" in mail.outbox[0].subject

    # The same condition again: the live alert counts it, nobody is mailed again within the cool-down.
    second = run_report(editor, monitor["id"])
    assert second["dataset_drift"] is True
    alert.refresh_from_db()
    assert Alert.objects.count() == 1 and alert.occurrences == 2
    services.alert_notify(alert_id=alert.pk)
    assert len(mail.outbox) == 1
    assert AlertDelivery.objects.filter(alert=alert, channel="email", delivered=True).count() == 1

    # Acknowledged, then the traffic recovers: the next report resolves it.
    assert editor.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").json()["status"] == "acknowledged"
    Monitor.objects.filter(pk=monitor["id"]).update(window_predictions=800)
    send_traffic(editor, project, credit_frame(rows=800, seed=13))
    assert run_report(editor, monitor["id"])["dataset_drift"] is False
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_too_few_predictions_give_no_verdict(editor, project, monitor):
    send_traffic(editor, project, credit_frame(rows=40, seed=3, shift=SHIFT))
    report = run_report(editor, monitor["id"])
    assert report["status"] == "insufficient_data" and report["features"] == []
    assert "at least 100" in report["data_quality"]["message"]
    assert not Alert.objects.exists()


def test_labels_join_the_right_predictions_and_give_performance(editor, project, monitor, served):
    frame = credit_frame(rows=400, seed=21)
    answers = []
    for i in range(0, 400, 50):
        rid = uuid.uuid4().hex
        answers.append((rid, predict(editor, project, frame.iloc[i : i + 50], request_id=rid)))
    from registry import prediction_log

    prediction_log.prediction_log_flush()
    labels = []
    wrong = 0
    for rid, answer in answers:
        assert answer["request_id"] == rid
        for row, predicted in enumerate(answer["predictions"]):
            # Every other label disagrees with what was predicted: accuracy exactly 0.5.
            flip = row % 2 == 0
            wrong += flip
            labels.append({"request_id": rid, "row": row, "label": (1 - predicted) if flip else predicted})
    url = f"/api/v1/monitors/{monitor['id']}/labels/"
    first = editor.post(url, labels, format="json", HTTP_IDEMPOTENCY_KEY="labels-1")
    assert first.status_code == 201 and first.json() == {"labels": 400}
    again = editor.post(url, labels, format="json", HTTP_IDEMPOTENCY_KEY="labels-1")
    assert again.json() == first.json() and Label.objects.count() == 400

    report = run_report(editor, monitor["id"])
    perf = report["performance"]
    assert perf["labelled"] == 400
    assert perf["metrics"]["accuracy"] == pytest.approx(1 - wrong / 400)
    assert perf["baseline"]["accuracy"] == pytest.approx(served.metrics["test_accuracy"])
    assert perf["over_time"] and perf["over_time"][-1]["rows"] > 0
    assert perf["concept_drift"]["n"] == 400
    # Accuracy fell far below its value at registration: a performance alert.
    assert Alert.objects.filter(kind="performance", status="open").exists()


def test_labels_as_csv_and_bad_labels(editor, project, monitor):
    rid = predict(editor, project, credit_frame(rows=2, seed=1))["request_id"]
    url = f"/api/v1/monitors/{monitor['id']}/labels/"
    from django.core.files.uploadedfile import SimpleUploadedFile

    csv_file = SimpleUploadedFile("labels.csv", f"request_id,row,label\n{rid},0,1\n{rid},1,0\n".encode())
    response = editor.post(url, {"file": csv_file}, format="multipart")
    assert response.status_code == 201, response.json()
    assert sorted(Label.objects.values_list("row", "label")) == [(0, 1), (1, 0)]
    bad = editor.post(url, [{"request_id": "nope", "row": 0, "label": 1}], format="json")
    assert bad.status_code == 400 and "labels[0].request_id" in bad.json()["error"]["fields"]
    bad = editor.post(url, [{"request_id": rid, "row": -1, "label": 1}], format="json")
    assert bad.status_code == 400 and "labels[0].row" in bad.json()["error"]["fields"]
    assert Label.objects.count() == 2


def test_predictions_from_elsewhere_are_logged_once_and_type_errors_counted(editor, project, monitor):
    frame = credit_frame(rows=150, seed=8)
    records = [
        {"inputs": r, "prediction": 0, "request_id": str(uuid.UUID(int=i + 1))}
        for i, r in enumerate(frame[["income", "age", "debt", "region"]].to_dict("records"))
    ]
    records[0]["inputs"]["income"] = "lots"
    url = f"/api/v1/monitors/{monitor['id']}/predictions/"
    assert editor.post(url, {"records": records}, format="json").json()["predictions"] == 150
    assert editor.post(url, {"records": records}, format="json").json()["skipped"] == 150
    report = run_report(editor, monitor["id"])
    assert report["current_rows"] == 150
    assert report["data_quality"]["features"]["income"]["type_errors"] == 1


def test_the_monitor_follows_its_alias_to_another_version(editor, project, monitor, served):
    from registry import services as registry_services

    send_traffic(editor, project, credit_frame(rows=300, seed=31))
    second = registry_services.model_version_create(
        project=project, model_name="scorer", run=served.run, artifact_path="model", user=editor.user
    )
    registry_services.model_version_check(job_id=second.check_job_id)
    second.refresh_from_db()
    registry_services.alias_set(model=served.model, alias="old", version=served, user=editor.user)
    registry_services.alias_set(model=served.model, alias="live", version=second, user=editor.user)
    send_traffic(editor, project, credit_frame(rows=200, seed=32))  # "live": version 2 now
    for i in range(0, 500, 100):  # version 1 again, but through "old": not this monitor's
        predict(editor, project, credit_frame(rows=500, seed=33).iloc[i : i + 100], alias="old")
    from registry import prediction_log

    prediction_log.prediction_log_flush()
    report = run_report(editor, monitor["id"])
    assert report["current_rows"] == 500
    assert report["model_versions"] == [served.pk, second.pk]


def test_report_and_job_results_are_stored_once_when_the_job_runs_twice(editor, project, monitor):
    send_traffic(editor, project, credit_frame(rows=200, seed=5))
    job_id = editor.post(f"/api/v1/monitors/{monitor['id']}/run/").json()["id"]
    services.drift_report_compute(job_id=job_id)
    services.drift_report_compute(job_id=job_id)
    assert MonitorReport.objects.count() == 1
    assert jobs.Job.objects.get(pk=job_id).result["report_id"] == MonitorReport.objects.get().pk


def test_a_reused_request_id_is_a_retry_and_counts_once(editor, project, monitor):
    frame = credit_frame(rows=300, seed=40)
    rid = uuid.uuid4().hex
    first = predict(editor, project, frame.iloc[:100], request_id=rid)
    predict(editor, project, frame.iloc[100:200], request_id=rid)  # the same id again: a retry
    predict(editor, project, frame.iloc[200:300])
    from registry import prediction_log

    prediction_log.prediction_log_flush()
    editor.post(
        f"/api/v1/monitors/{monitor['id']}/labels/",
        [{"request_id": rid, "row": 0, "label": first["predictions"][0]}],
        format="json",
    )
    report = run_report(editor, monitor["id"])
    assert report["current_rows"] == 200
    assert report["performance"]["labelled"] == 1 and report["performance"]["metrics"]["accuracy"] == 1.0


def test_a_webhook_is_retried_until_the_receiver_takes_it(editor, project, monitor, settings):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    answers = [500, 503, 204]
    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(answers[len(got) - 1])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.WEBHOOK_ALLOW_PRIVATE = True
        url = f"http://127.0.0.1:{server.server_port}/hook"
        Monitor.objects.filter(pk=monitor["id"]).update(webhook_url=url, webhook_secret="s" * 20)
        send_traffic(editor, project, credit_frame(rows=300, seed=12, shift=SHIFT))
        run_report(editor, monitor["id"])
        alert = Alert.objects.get()
        services.alert_notify(alert_id=alert.pk)
        delivery = AlertDelivery.objects.get(channel="webhook")
        # What the task does on each delivery of its message; it is retried with backoff
        # while this answers False.
        outcomes = [services.alert_webhook_attempt(delivery_id=delivery.pk) for _ in range(3)]
        assert outcomes == [False, False, True]
        delivery.refresh_from_db()
        assert len(got) == 3 and delivery.delivered and delivery.attempts == 3 and delivery.status_code == 204
        assert services.alert_webhook_attempt(delivery_id=delivery.pk) is True and len(got) == 3
    finally:
        server.shutdown()


def test_beat_runs_a_scheduled_monitor_as_a_report_job(editor, project, served):
    from monitoring.tasks import monitor_scheduled_run_task

    body = editor.post(
        f"/api/v1/projects/{project.slug}/monitors/",
        {"model": "scorer", "alias": "live", "schedule_minutes": 5},
        format="json",
    ).json()
    job_id = monitor_scheduled_run_task.run(body["id"])
    job = jobs.Job.objects.get(pk=job_id)
    assert job.kind == "drift_report" and job.params == {"monitor_id": body["id"]}
    assert monitor_scheduled_run_task.run(10**9) is None


def test_a_feature_the_reference_lacks_is_named_not_compared(editor, project, served, eager):
    from tests.datasets.test_datasets import csv_bytes, upload

    with eager():
        narrow = upload(
            editor, project.slug, "narrow", csv_bytes(credit_frame().drop(columns=["debt"]))
        ).json()
    body = create(editor, project, reference_dataset_version=narrow["id"]).json()
    send_traffic(editor, project, credit_frame(rows=300, seed=14))
    report = run_report(editor, body["id"])
    assert [f["feature"] for f in report["features"]] == ["income", "age", "region"]
    assert report["data_quality"]["not_in_reference"] == ["debt"]


def test_settings_change_with_the_same_checks_and_the_schedule_follows(editor, viewer, monitor):
    from django_celery_beat.models import PeriodicTask

    url = f"/api/v1/monitors/{monitor['id']}/"
    changed = editor.patch(
        url, {"thresholds": {"psi": 0.2}, "schedule_minutes": 10, "retrain_on_alert": True}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert body["thresholds"]["psi"] == 0.2 and body["thresholds"]["significance"] == 0.05
    assert body["schedule_minutes"] == 10 and body["retrain_on_alert"] is True
    assert PeriodicTask.objects.get(name=f"monitor-{monitor['id']}").interval.every == 10
    bad = editor.patch(url, {"webhook_url": "http://10.0.0.1/", "webhook_secret": "s" * 20}, format="json")
    assert bad.status_code == 400 and "webhook_url" in bad.json()["error"]["fields"]
    assert editor.patch(url, {"alias": "other"}, format="json").status_code == 400
    assert viewer.patch(url, {"schedule_minutes": 5}, format="json").status_code == 403
    assert editor.patch(url, {"schedule_minutes": None}, format="json").json()["schedule_minutes"] is None
    assert not PeriodicTask.objects.filter(name=f"monitor-{monitor['id']}").exists()
    assert Monitor.objects.get(pk=monitor["id"]).thresholds == {"psi": 0.2}
