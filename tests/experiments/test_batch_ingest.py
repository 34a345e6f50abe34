"""The batch endpoint as a training script meets it: bodies at the edges of JSON,
batches longer than one insert statement, and long histories read back whole."""

import json
import math

import pytest

from experiments import selectors
from experiments.models import LatestMetric, Metric, MetricRollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_id(editor, project):
    response = editor.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "ingest"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def post_raw(client, run_id, text: str):
    return client.post(f"/api/v1/runs/{run_id}/batch/", text, content_type="application/json")


def read_history(client, run_id, key, **params) -> dict:
    response = client.get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": key, **params})
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return json.loads(body)


@pytest.mark.parametrize("literal", ["9223372036854775808", "-9223372036854775809",
                                     "99999999999999999999999", "-99999999999999999999999"])
def test_a_step_just_past_int64_is_400_naming_it(editor, run_id, literal):
    # Past int64, some JSON parsers hand over a float that rounds back to the
    # edge of the range; the step must still be refused, not clamped.
    response = post_raw(editor, run_id, '{"metrics": [{"key": "a", "value": 1, "step": 0},'
                                        f' {{"key": "a", "value": 2, "step": {literal}}}]}}')
    assert response.status_code == 400
    assert "metrics[1].step" in response.json()["error"]["fields"]
    assert not Metric.objects.filter(run_id=run_id).exists()


def test_steps_at_both_ends_of_int64_are_stored(editor, run_id):
    response = post_raw(editor, run_id, '{"metrics": [{"key": "a", "value": 1, "step": -9223372036854775808},'
                                        ' {"key": "a", "value": 2, "step": 9223372036854775807}]}')
    assert response.status_code == 201
    steps = sorted(Metric.objects.filter(run_id=run_id).values_list("step", flat=True))
    assert steps == [-(2**63), 2**63 - 1]


def test_a_value_past_a_doubles_range_is_stored_as_infinity(editor, run_id):
    response = post_raw(editor, run_id, '{"metrics": [{"key": "a", "value": 1e400, "step": 0}]}')
    assert response.status_code == 201
    assert read_history(editor, run_id, "a")["points"][0]["value"] == "Infinity"


def test_nan_literal_is_refused_as_json(editor, run_id):
    # NaN is sent as the string "NaN"; a bare NaN is not JSON.
    response = post_raw(editor, run_id, '{"metrics": [{"key": "a", "value": NaN, "step": 0}]}')
    assert response.status_code == 400
    assert response.json()["error"]["code"]
    assert not Metric.objects.filter(run_id=run_id).exists()


def test_body_that_is_not_an_object_is_400(editor, run_id):
    response = post_raw(editor, run_id, "[1, 2, 3]")
    assert response.status_code == 400
    assert "body" in response.json()["error"]["fields"]


def test_a_long_batch_is_stored_whole_with_latest_and_rollups(editor, run_id):
    # 2,345 points: more than one insert statement, two keys, out of step order.
    points = [{"key": "loss" if i % 2 else "acc", "value": math.sin(i), "step": (i * 7919) % 2345,
               "timestamp": 1_000 + i} for i in range(2_345)]
    points[100]["value"] = "NaN"
    response = editor.post(f"/api/v1/runs/{run_id}/batch/", {"metrics": points}, format="json")
    assert response.status_code == 201
    assert response.json()["metrics"] == 2_345
    for key in ("loss", "acc"):
        sent = sorted((p["step"], p["value"]) for p in points if p["key"] == key)
        stored = [(p["step"], p["value"]) for p in read_history(editor, run_id, key)["points"]]
        assert stored == sent
        newest = max((p["step"], p["timestamp"], p["value"]) for p in points if p["key"] == key)
        latest = LatestMetric.objects.get(run_id=run_id, key=key)
        assert (latest.step, latest.timestamp, latest.value) == newest
        counted = sum(MetricRollup.objects.filter(run_id=run_id, key=key).values_list("count", flat=True))
        assert counted == len(sent)


def test_a_history_longer_than_one_chunk_streams_every_point_in_order(editor, run_id):
    total = selectors.HISTORY_CHUNK * 2 + 17
    for start in range(0, total, 10_000):
        steps = range(start, min(start + 10_000, total))
        metrics = [{"key": "long", "value": "Infinity" if s == 12_345 else s / 3, "step": s,
                    "timestamp": 5_000 + s} for s in reversed(steps)]
        assert editor.post(f"/api/v1/runs/{run_id}/batch/", {"metrics": metrics},
                           format="json").status_code == 201
    response = editor.get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": "long"})
    assert response.streaming
    body = json.loads(b"".join(response.streaming_content))
    assert (body["key"], body["total"], body["downsampled"]) == ("long", total, False)
    assert [p["step"] for p in body["points"]] == list(range(total))
    assert body["points"][12_345] == {"step": 12_345, "value": "Infinity", "timestamp": 17_345}
    assert body["points"][-1] == {"step": total - 1, "value": (total - 1) / 3, "timestamp": 5_000 + total - 1}


def test_an_empty_history_is_an_empty_list(editor, run_id):
    body = read_history(editor, run_id, "nothing")
    assert body == {"key": "nothing", "total": 0, "downsampled": False, "points": []}


def test_nan_only_keys_and_infinities_round_trip(editor, run_id):
    # A key whose block holds only NaN has no min or max.
    points = [{"key": "nan-only", "value": "NaN", "step": s, "timestamp": 10 + s} for s in range(3)]
    points += [{"key": "eval: loss/top-1", "value": v, "step": s, "timestamp": 20 + s}
               for s, v in enumerate(["-Infinity", 0.25, "Infinity"])]
    assert editor.post(f"/api/v1/runs/{run_id}/batch/", {"metrics": points}, format="json").status_code == 201
    assert [p["value"] for p in read_history(editor, run_id, "nan-only")["points"]] == ["NaN"] * 3
    assert [p["value"] for p in read_history(editor, run_id, "eval: loss/top-1")["points"]] == [
        "-Infinity", 0.25, "Infinity"]
    nan_block = MetricRollup.objects.get(run_id=run_id, key="nan-only")
    assert (nan_block.count, nan_block.min_value, nan_block.max_value) == (3, None, None)
    block = MetricRollup.objects.get(run_id=run_id, key="eval: loss/top-1")
    assert (block.count, block.min_value, block.max_value) == (3, -math.inf, math.inf)
    latest = LatestMetric.objects.get(run_id=run_id, key="eval: loss/top-1")
    assert (latest.step, latest.value) == (2, math.inf)
    assert LatestMetric.objects.get(run_id=run_id, key="nan-only").value is None


def test_a_repeated_key_answers_the_first_answer_and_refuses_another_body(editor, run_id):
    first = {"params": [{"key": "lr", "value": "0.1"}], "metrics": [{"key": "a", "value": 1, "step": 0}]}
    changed = {"params": [{"key": "lr", "value": "0.2"}], "metrics": [{"key": "a", "value": 2, "step": 1}]}
    answers = [editor.post(f"/api/v1/runs/{run_id}/batch/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-7")
               for body in (first, first, changed)]
    assert [a.status_code for a in answers] == [201, 201, 422]
    assert answers[0].json() == answers[1].json()
    assert answers[2].json()["error"]["code"] == "idempotency_key_reused"
    assert list(Metric.objects.filter(run_id=run_id).values_list("step", "value")) == [(0, 1.0)]
    assert LatestMetric.objects.get(run_id=run_id, key="a").value == 1.0
    assert sum(MetricRollup.objects.filter(run_id=run_id).values_list("count", flat=True)) == 1
