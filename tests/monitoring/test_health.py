"""Operational health: every served request counted per minute, with latency and refusals."""

import datetime as dt

import pytest
from django.utils import timezone

from monitoring import health
from monitoring.models import Monitor, ServingMinute
from tests.monitoring.conftest import FEATURES, credit_frame, predict

pytestmark = pytest.mark.django_db


def test_served_requests_give_rate_latency_and_error_rate(editor, project, served):
    for i in range(5):
        predict(editor, project, credit_frame(rows=500, seed=i).iloc[i * 10 : i * 10 + 10])
    bad = credit_frame(rows=2, seed=9)[FEATURES].to_dict("records")
    bad[0]["income"] = "lots"
    response = editor.post(
        f"/api/v1/serve/{project.slug}/scorer/live/predict", {"records": bad}, format="json"
    )
    assert response.status_code == 400
    # Refused before any version was chosen: not counted against one.
    assert (
        editor.post(
            f"/api/v1/serve/{project.slug}/scorer/nope/predict", {"records": bad}, format="json"
        ).status_code
        == 404
    )
    assert health.health_flush() >= 1
    rows = ServingMinute.objects.filter(model_version=served)
    assert sum(r.requests for r in rows) == 6 and sum(r.rows for r in rows) == 50
    assert sum(r.refused for r in rows) == 1 and sum(r.failed for r in rows) == 0

    monitor = Monitor.objects.create(project=project, model=served.model, alias="live")
    series = health.health_series(monitor, since=timezone.now() - dt.timedelta(hours=1))
    assert sum(series["requests"]) == 6 and sum(series["rows"]) == 50
    assert sum(series["refused"]) == 1
    p50, p99 = series["p50_ms"][-1], series["p99_ms"][-1]
    assert p50 is not None and 0 < p50 <= p99 < 30_000
    assert sum(r for r in series["error_rate"] if r) > 0


def test_latency_percentiles_come_from_the_histogram():
    import numpy as np

    histogram = np.zeros(len(health.LATENCY_EDGES) + 1, dtype=np.int64)
    for seconds in [0.001] * 90 + [0.1] * 9 + [2.0]:
        histogram[__import__("bisect").bisect_right(health.LATENCY_EDGES, seconds)] += 1
    assert 0.001 <= health._percentile(histogram, 0.5) < 0.00125
    assert 0.1 <= health._percentile(histogram, 0.95) < 0.125
    assert 2.0 <= health._percentile(histogram, 0.999) < 2.5
