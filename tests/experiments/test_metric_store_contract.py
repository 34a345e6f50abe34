"""One contract for both metric stores: the same calls give the same answers on PostgreSQL and
on SQLite. The suite runs on whichever database is configured; CI runs it on each."""

import math
import threading

import pytest
from django.db import connection, connections, transaction

from experiments.metric_store import MetricPoint as P
from experiments.metric_store import metric_store
from experiments.models import LatestMetric, MetricRollup, Run
from tests.factories import RunFactory

NAN, INF = math.nan, math.inf


@pytest.fixture
def store():
    return metric_store()


@pytest.fixture
def run(db):
    return RunFactory()


def history(store, run, key, size=3) -> list[tuple]:
    chunks = list(store.history_chunks(run_id=run.pk, key=key, size=size))
    assert all(0 < len(chunk) <= size for chunk in chunks)
    return [row for chunk in chunks for row in chunk]


def latest(run) -> dict[str, tuple]:
    return {key: (value, step, ts) for key, value, step, ts in
            LatestMetric.objects.filter(run=run).values_list("key", "value", "step", "timestamp")}


def rollups(run, key) -> list[tuple]:
    return list(MetricRollup.objects.filter(run=run, key=key).order_by("block").values_list(
        "block", "count", "min_value", "min_step", "max_value", "max_step"))


def test_the_store_is_the_configured_databases_and_chosen_once(store):
    assert store.vendor == connection.vendor
    assert metric_store() is store


def test_identical_points_are_stored_once_nan_equal_to_nan_and_infinities_kept(store, run):
    batch = [
        P("loss", 1.0, 0, 10), P("loss", 1.0, 0, 10),  # the same point twice
        P("loss", float("nan"), 1, 11), P("loss", float("nan"), 1, 11),  # NaN equals NaN here
        P("loss", INF, 2, 12), P("loss", INF, 2, 12),
        P("loss", -INF, 2, 12),  # another value: another point
        P("loss", 1.0, 0, 11),  # another time
        P("loss", 1.0, 3, 10),  # another step
        P("acc", 1.0, 0, 10),  # another key
    ]
    assert store.points_add_new(run_id=run.pk, points=batch) == 7
    expected = [(0, 1.0, 10), (0, 1.0, 11), (1, None, 11), (2, INF, 12), (2, -INF, 12), (3, 1.0, 10)]
    assert history(store, run, "loss") == expected
    assert history(store, run, "acc") == [(0, 1.0, 10)]

    # Sent again with one new point: only that one is stored.
    assert store.points_add_new(run_id=run.pk, points=[*batch, P("loss", NAN, 4, 13)]) == 1
    assert history(store, run, "loss") == [*expected, (4, None, 13)]
    assert store.history_count(run_id=run.pk, key="loss") == 7
    assert rollups(run, "loss") == [(0, 7, -INF, 2, INF, 2)]
    assert latest(run) == {"loss": (None, 4, 13), "acc": (1.0, 0, 10)}


def test_a_retried_batch_counts_once_in_latest_values_and_rollups(store, run):
    batch = [P(key, math.sin(step) * (1 if key == "loss" else -1), step, 1_000 + step)
             for step in range(100) for key in ("loss", "acc")]
    assert [store.points_add_new(run_id=run.pk, points=batch) for _ in range(3)] == [200, 0, 0]
    # Half of it again, with a tail of new points: the new ones only.
    tail = [P("loss", 5.0, step, 1_000 + step) for step in range(100, 130)]
    assert store.points_add_new(run_id=run.pk, points=batch[100:] + tail) == 30

    loss = [(s, math.sin(s)) for s in range(100)] + [(s, 5.0) for s in range(100, 130)]
    assert [(step, value) for step, value, _ in history(store, run, "loss", size=50)] == loss
    for block, count, low, low_step, high, high_step in rollups(run, "loss"):
        inside = [(value, step) for step, value in loss if step // MetricRollup.ROLLUP_BLOCK == block]
        assert count == len(inside)
        assert (low, low_step) == min(inside)
        assert high == max(inside)[0]
        assert high_step == min(step for value, step in inside if value == high)
    assert sum(r[1] for r in rollups(run, "acc")) == 100
    assert latest(run) == {"loss": (5.0, 129, 1_129), "acc": (-math.sin(99), 99, 1_099)}


def test_append_stores_every_point_it_is_given(store, run):
    # The native batch endpoint makes a retry safe with an Idempotency-Key instead.
    for _ in range(2):
        store.points_append(run_id=run.pk, points=[P("loss", 0.5, 0, 1)])
    assert history(store, run, "loss") == [(0, 0.5, 1), (0, 0.5, 1)]
    assert rollups(run, "loss") == [(0, 2, 0.5, 0, 0.5, 0)]
    store.points_append(run_id=run.pk, points=[])
    assert store.history_count(run_id=run.pk, key="loss") == 2


def test_the_latest_value_is_the_highest_step_then_time_whatever_the_arrival_order(store, run):
    store.points_append(run_id=run.pk, points=[P("a", 3.0, 5, 50), P("a", 1.0, 2, 90), P("b", NAN, 0, 1)])
    store.points_append(run_id=run.pk, points=[P("a", 9.0, 4, 99)])  # older step, arrived later
    assert latest(run) == {"a": (3.0, 5, 50), "b": (None, 0, 1)}
    store.points_append(run_id=run.pk, points=[P("a", 7.0, 5, 51), P("a", 8.0, 5, 51), P("b", -INF, 0, 1)])
    # At the same step and time, the point that came last wins.
    assert latest(run) == {"a": (8.0, 5, 51), "b": (-INF, 0, 1)}


def test_history_comes_in_step_then_time_then_arrival_order(store, run):
    top, bottom = 2**63 - 1, -(2**63)
    batches = [
        [P("m", 1.0, 3, 30), P("m", 2.0, top, 5), P("m", 3.0, 3, 20)],
        [P("m", 4.0, 3, 30), P("m", 5.0, bottom, 9), P("other", 6.0, 0, 0)],
        [P("m", NAN, 0, 7), P("m", 8.0, 3, 30), P("m", INF, -1, 1)],
    ]
    for batch in batches:
        store.points_append(run_id=run.pk, points=batch)
    assert history(store, run, "m", size=4) == [
        (bottom, 5.0, 9), (-1, INF, 1), (0, None, 7), (3, 3.0, 20), (3, 1.0, 30), (3, 4.0, 30), (3, 8.0, 30),
        (top, 2.0, 5),
    ]
    assert store.history_count(run_id=run.pk, key="m") == 8
    assert history(store, run, "nothing") == [] and store.history_count(run_id=run.pk, key="nothing") == 0


def test_pages_walk_the_history_without_gaps_or_repeats(store, run):
    # Ties on step and time, in several batches, so a page boundary falls inside a tie.
    for start in range(0, 25, 5):
        store.points_append(run_id=run.pk, points=[P("m", float(i), i // 3, 100 + i // 6)
                                                   for i in range(start, start + 5)])
    whole = [(step, ts, value) for step, value, ts in history(store, run, "m")]
    pages, after = [], None
    while page := store.history_page(run_id=run.pk, key="m", after=after, limit=4):
        assert len(page) <= 4
        pages.append(page)
        after = page[-1][0], page[-1][1], page[-1][3]
    assert [len(p) for p in pages] == [4, 4, 4, 4, 4, 4, 1]
    assert [(step, ts, value) for page in pages for step, ts, value, _ in page] == whole
    assert [value for _, _, value in whole] == [float(i) for i in range(25)]


def spiky(total: int, gap: int = 1) -> list[P]:
    points = [P("s", math.sin(i / 40) + i / total, i * gap, 10_000 + i) for i in range(total)]
    points[total // 3] = P("s", 90.0, (total // 3) * gap, 10_000 + total // 3)
    points[total // 2] = P("s", -90.0, (total // 2) * gap, 10_000 + total // 2)
    return points


@pytest.mark.parametrize(("total", "gap"), [(20_000, 1), (1_000, 64)], ids=["from-rollups", "from-points"])
def test_a_downsampled_history_keeps_its_shape_and_spikes(store, run, total, gap):
    # 20,000 dense points are sampled from their rollups; 1,000 points one per block from the points.
    points = spiky(total, gap)
    for start in range(0, total, 5_000):
        store.points_append(run_id=run.pk, points=points[start:start + 5_000])
    count, sampled = store.history_sample(run_id=run.pk, key="s", max_points=100)
    assert count == total
    assert 50 <= len(sampled) <= 100
    stored = {(p.step, p.value, p.timestamp) for p in points}
    assert set(sampled) <= stored
    assert [s[0] for s in sampled] == sorted(s[0] for s in sampled)
    values = [s[1] for s in sampled]
    assert 90.0 in values and -90.0 in values
    # Each of the 50 buckets gives its lowest and its highest point: the series' shape, not a subset.
    assert min(p.value for p in points[:total // 50]) in values
    assert max(p.value for p in points[-(total // 50):]) in values


def test_a_history_within_max_points_is_not_sampled(store, run):
    store.points_append(run_id=run.pk, points=[P("s", float(i), i, i) for i in range(50)])
    assert store.history_sample(run_id=run.pk, key="s", max_points=50) == (50, None)
    assert store.history_sample(run_id=run.pk, key="nothing", max_points=10) == (0, None)


def test_infinities_and_nan_survive_downsampling_as_they_are(store, run):
    points = [P("s", NAN if i < 200 else float(i % 7), i, i) for i in range(1_000)]
    points[600] = P("s", INF, 600, 600)
    points[700] = P("s", -INF, 700, 700)
    store.points_append(run_id=run.pk, points=points)
    _, from_rollups = store.history_sample(run_id=run.pk, key="s", max_points=10)  # 16 blocks
    assert INF in [s[1] for s in from_rollups] and -INF in [s[1] for s in from_rollups]
    assert None not in [s[1] for s in from_rollups]  # a block of only NaN gives nothing
    spread = [P("t", p.value, p.step * 64, p.timestamp) for p in points]  # one point per block
    store.points_append(run_id=run.pk, points=spread)
    _, from_points = store.history_sample(run_id=run.pk, key="t", max_points=20)
    values = [s[1] for s in from_points]
    assert INF in values and -INF in values
    assert values[:2] == [None, None]  # a bucket of only NaN gives one NaN point


@pytest.mark.django_db(transaction=True)
def test_many_runs_written_at_once_each_keep_their_own_points(store):
    runs = [RunFactory() for _ in range(6)]
    failures: list[BaseException] = []

    def write(run: Run, offset: int) -> None:
        try:
            for start in range(0, 600, 100):
                points = [P("loss", offset + step / 1000, step, 1_000 + step)
                          for step in range(start, start + 100)]
                with transaction.atomic():
                    # The retry-safe path under the run's row lock, as the MLflow endpoints use it.
                    Run.objects.select_for_update().filter(pk=run.pk).first()
                    store.points_add_new(run_id=run.pk, points=points)
                    store.points_add_new(run_id=run.pk, points=points[:10])
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(run, i)) for i, run in enumerate(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for i, run in enumerate(runs):
        assert history(store, run, "loss", size=1_000) == [(s, i + s / 1000, 1_000 + s) for s in range(600)]
        assert sum(r[1] for r in rollups(run, "loss")) == 600
        assert latest(run) == {"loss": (i + 599 / 1000, 599, 1_599)}
