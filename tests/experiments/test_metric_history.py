import math

import pytest

from experiments import services
from experiments.services import MetricPoint
from tests.factories import RunFactory


@pytest.fixture
def run(project):
    return RunFactory(experiment__project=project)


def log(run, key, values_by_step):
    services.metrics_log(
        run=run,
        points=[MetricPoint(key, value, step, 1_000 + step if abs(step) < 10**12 else 1_000)
                for step, value in values_by_step],
    )


def history(client, run, **params):
    response = client.get(f"/api/v1/runs/{run.pk}/metrics/history/", params)
    assert response.status_code == 200, response.json()
    return response.json()


def wave(step: int) -> float:
    return math.sin(step / 37) + step / 1000


@pytest.mark.django_db
def test_full_history_comes_in_step_order(viewer, run):
    # Logged out of order, in two batches, with a second key that must not leak in.
    log(run, "loss", [(5, 0.5), (1, 0.9), (3, 0.7)])
    log(run, "loss", [(2, 0.8), (4, 0.6), (0, 1.0)])
    log(run, "acc", [(0, 0.1), (1, 0.2)])
    body = history(viewer, run, key="loss")
    assert body["total"] == 6
    assert body["downsampled"] is False
    assert [(p["step"], p["value"]) for p in body["points"]] == [
        (0, 1.0), (1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6), (5, 0.5),
    ]
    assert body["points"][0]["timestamp"] == 1_000


@pytest.mark.django_db
def test_max_points_at_or_above_the_total_returns_everything(viewer, run):
    log(run, "loss", [(s, wave(s)) for s in range(50)])
    body = history(viewer, run, key="loss", max_points=50)
    assert body["downsampled"] is False
    assert [p["step"] for p in body["points"]] == list(range(50))


@pytest.mark.django_db
def test_downsampling_keeps_a_single_spike_at_its_true_step(viewer, run):
    values = {s: wave(s) for s in range(2_000)}
    values[1_337] = 50.0
    values[404] = -50.0
    log(run, "loss", sorted(values.items()))
    body = history(viewer, run, key="loss", max_points=40)
    assert body["downsampled"] is True
    assert body["total"] == 2_000
    points = [(p["step"], p["value"]) for p in body["points"]]
    assert (1_337, 50.0) in points
    assert (404, -50.0) in points
    # Every point shown is a point that was logged, at its own step, in step order.
    assert all(values[step] == value for step, value in points)
    assert [s for s, _ in points] == sorted(s for s, _ in points)


@pytest.mark.django_db
def test_downsampling_keeps_each_buckets_min_and_max(viewer, run):
    values = {s: wave(s) * ((-1) ** s) for s in range(1_000)}
    log(run, "loss", sorted(values.items()))
    body = history(viewer, run, key="loss", max_points=20)
    shown = {p["step"]: p["value"] for p in body["points"]}
    # Ten buckets of 100 steps: each keeps its lowest and its highest point.
    for start in range(0, 1_000, 100):
        bucket = {s: values[s] for s in range(start, start + 100)}
        low = min(bucket, key=bucket.get)
        high = max(bucket, key=bucket.get)
        assert shown.get(low) == bucket[low]
        assert shown.get(high) == bucket[high]
    assert len(shown) == 20


@pytest.mark.django_db
@pytest.mark.parametrize("max_points", [2, 3, 7, 10, 99, 500])
def test_max_points_bounds_the_result(viewer, run, max_points):
    log(run, "loss", [(s * 3, wave(s)) for s in range(1_001)])
    body = history(viewer, run, key="loss", max_points=max_points)
    assert body["downsampled"] is True
    assert 1 <= len(body["points"]) <= max_points
    # Downsampling should use the room it is given, not return a handful of points.
    assert len(body["points"]) >= max_points // 2


@pytest.mark.django_db
def test_unevenly_spaced_steps_still_fill_max_points(viewer, run):
    # Evaluation-style logging: dense early steps, then one far-away step.
    points = [(s, wave(s)) for s in range(1_000)] + [(10_000_000, 0.0)]
    log(run, "loss", points)
    body = history(viewer, run, key="loss", max_points=100)
    assert 50 <= len(body["points"]) <= 100
    assert body["points"][-1]["step"] == 10_000_000


@pytest.mark.django_db
def test_extreme_steps_are_downsampled_without_error(viewer, run):
    lowest, highest = -(2**63), 2**63 - 1
    log(run, "loss", [(lowest, 1.0), *((s, wave(s)) for s in range(20)), (highest, 2.0)])
    body = history(viewer, run, key="loss", max_points=6)
    steps = [p["step"] for p in body["points"]]
    assert len(steps) <= 6
    assert steps[0] == lowest and steps[-1] == highest


@pytest.mark.django_db
def test_non_finite_values_are_encoded_as_strings(viewer, run):
    log(run, "loss", [(0, 1.0), (1, math.nan), (2, math.inf), (3, -math.inf)])
    body = history(viewer, run, key="loss")
    assert [p["value"] for p in body["points"]] == [1.0, "NaN", "Infinity", "-Infinity"]


@pytest.mark.django_db
def test_infinity_survives_downsampling_as_an_extreme(viewer, run):
    points = [(s, wave(s)) for s in range(300)]
    points[150] = (150, math.inf)
    log(run, "loss", points)
    body = history(viewer, run, key="loss", max_points=10)
    assert {"step": 150, "value": "Infinity", "timestamp": 1_150} in body["points"]


@pytest.mark.django_db
def test_unknown_key_is_an_empty_history(viewer, run):
    body = history(viewer, run, key="nothing", max_points=10)
    assert body["total"] == 0
    assert body["points"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("max_points", ["0", "1", "-4", "abc", "100001", "2.5"])
def test_bad_max_points_is_400(viewer, run, max_points):
    response = viewer.get(
        f"/api/v1/runs/{run.pk}/metrics/history/", {"key": "loss", "max_points": max_points}
    )
    assert response.status_code == 400
    assert "max_points" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_missing_key_is_400(viewer, run):
    response = viewer.get(f"/api/v1/runs/{run.pk}/metrics/history/")
    assert response.status_code == 400
    assert "key" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_history_of_a_run_in_another_project_is_404(outsider, run):
    log(run, "loss", [(0, 1.0)])
    response = outsider.get(f"/api/v1/runs/{run.pk}/metrics/history/", {"key": "loss"})
    assert response.status_code == 404


@pytest.mark.django_db
def test_rollups_track_each_blocks_extremes_across_out_of_order_batches(run):
    from experiments.models import MetricRollup

    size = MetricRollup.ROLLUP_BLOCK
    log(run, "loss", [(s, float(s % 7)) for s in range(0, 2 * size, 2)])
    log(run, "loss", [(s, float(s % 5)) for s in range(1, 2 * size, 2)] + [(3, -1.0), (size + 1, math.nan)])
    rollups = {r.block: r for r in MetricRollup.objects.filter(run=run, key="loss")}
    assert set(rollups) == {0, 1}
    first = rollups[0]
    assert (first.min_value, first.min_step) == (-1.0, 3)
    assert first.max_value == 6.0
    assert rollups[1].count == size + 1  # the NaN is counted, never a min or max
    assert sum(r.count for r in rollups.values()) == 2 * size + 2


@pytest.mark.django_db
def test_long_series_downsampled_from_rollups_matches_the_raw_extremes(viewer, run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    values = [(s, wave(s)) for s in range(40_000)]
    values[12_345] = (12_345, 99.0)  # a spike
    values[30_001] = (30_001, -99.0)  # a dip
    for start in range(0, len(values), 5_000):
        log(run, "long", values[start:start + 5_000])
    with CaptureQueriesContext(connection) as queries:
        body = history(viewer, run, key="long", max_points=200)
    # The 40,000 points themselves are never read, nor counted: the rollups hold their count.
    assert not any('"experiments_metric"' in q["sql"] for q in queries.captured_queries)
    assert body["downsampled"] is True
    assert body["total"] == 40_000
    points = [(p["step"], p["value"]) for p in body["points"]]
    assert 100 <= len(points) <= 200
    assert (12_345, 99.0) in points and (30_001, -99.0) in points
    assert [s for s, _ in points] == sorted(s for s, _ in points)
    # Every returned point is a real one, at its own step.
    assert all(values[s][1] == pytest.approx(val) for s, val in points)


@pytest.mark.django_db
def test_series_written_around_the_service_still_downsample_from_raw_points(viewer, run):
    from experiments.models import Metric

    Metric.objects.bulk_create(
        Metric(run=run, key="seeded", value=wave(s), step=s, timestamp=1_000 + s) for s in range(5_000)
    )
    Metric.objects.filter(run=run, key="seeded", step=4_321).update(value=50.0)
    body = history(viewer, run, key="seeded", max_points=100)
    assert body["total"] == 5_000
    assert len(body["points"]) <= 100
    assert {"step": 4_321, "value": 50.0, "timestamp": 5_321} in body["points"]


@pytest.mark.django_db
def test_rollups_rebuilt_from_the_points_match_the_ones_kept_at_ingestion(run):
    # Migration 0006 rebuilds rollups for points stored before they existed: its
    # SQL must agree with ingestion on blocks of negative steps, NaN, infinities and ties.
    import importlib
    from types import SimpleNamespace

    from django.db import connection

    from experiments.models import MetricRollup

    migration = importlib.import_module("experiments.migrations.0006_metric_points_fk_rollups_backfill")
    size = MetricRollup.ROLLUP_BLOCK
    log(run, "loss", [(s, float(s % 3)) for s in range(-2 * size - 5, size, 2)])
    log(run, "loss", [(s, float(s % 3)) for s in range(-2 * size - 4, size, 2)]
        + [(-1, math.inf), (0, -math.inf), (7, math.nan), (2**63 - 1, 1.0), (-(2**63), 2.0)])
    log(run, "nan", [(s, math.nan) for s in range(5)])
    columns = ("key", "block", "count", "min_value", "min_step", "min_timestamp",
               "max_value", "max_step", "max_timestamp")
    kept = sorted(MetricRollup.objects.filter(run=run).values_list(*columns))
    migration.rebuild_rollups(None, SimpleNamespace(connection=connection))
    assert sorted(MetricRollup.objects.filter(run=run).values_list(*columns)) == kept
    assert {block for key, block, *_ in kept if key == "loss"} >= {-3, -2, -1, 0, 2**57 - 1, -(2**57)}
