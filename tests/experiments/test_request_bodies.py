"""The tracking API's request bodies: parsed at the edge by the serializers that document them."""

from __future__ import annotations

import math
import uuid

import jsonschema
import pytest
from django.core.exceptions import ValidationError
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import services
from experiments.api import serializers as inputs
from experiments.models import Run

KEYS = st.sampled_from(["loss", "acc", "val/loss", "bad key!", "", "../up", ["loss"], None, 3])
VALUES = st.one_of(st.floats(allow_nan=True), st.integers(min_value=-2**70, max_value=2**70),
                   st.sampled_from(["NaN", "Infinity", "-inf", "1.5", True, None, [1.0]]))
INTS = st.one_of(st.integers(min_value=-2**64, max_value=2**64), st.none(),
                 st.sampled_from([0, 1.0, 2.5, "7", True, False, 2.0**63]))
POINT = st.fixed_dictionaries({"key": KEYS, "value": VALUES}, optional={"step": INTS, "timestamp": INTS})
ITEM = st.one_of(POINT, st.sampled_from(["loss", 1, None, []]))


def _outcome(parse):
    """What a parse returns (NaN made comparable), or the fields its refusal names."""
    try:
        points = parse()
    except ValidationError as exc:
        return ("refused", sorted(exc.message_dict))
    return ("parsed", [(p.key, "nan" if math.isnan(p.value) else p.value, p.step, p.timestamp)
                       for p in points])


@settings(max_examples=400, deadline=None)
@given(st.lists(ITEM, max_size=6))
def test_the_fast_path_answers_as_the_declared_fields_do(items):
    """The list's shortcut for the SDK's points and the point serializer's own fields agree on
    every body: the same points, or a refusal naming the same place."""
    now = services.now_ms()
    child = inputs.MetricPointIn()

    def field_by_field():
        return [child.parse(item, f"metrics[{i}]", now) for i, item in enumerate(items)]

    fast = _outcome(lambda: inputs.metric_points_parse(items, "metrics"))
    slow = _outcome(field_by_field)
    if fast[0] == "parsed" and slow[0] == "parsed":
        # The two clocks may differ by a millisecond for points that carry no time.
        fast = (fast[0], [p if items[i].get("timestamp") else p[:3] for i, p in enumerate(fast[1])])
        slow = (slow[0], [p if items[i].get("timestamp") else p[:3] for i, p in enumerate(slow[1])])
    assert fast == slow


def test_is_valid_gives_what_parse_gives():
    body = {"params": {"lr": 0.1}, "metrics": [{"key": "loss", "value": 1, "step": 2, "timestamp": 5}],
            "tags": [{"key": "team", "value": "vision"}]}
    serializer = inputs.BatchIn(data=body)
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data == inputs.batch_parse(body)
    refused = inputs.BatchIn(data={"metrics": [{"key": "a b!", "value": 1}]})
    assert not refused.is_valid()
    assert list(refused.errors) == ["metrics[0].key"]


def test_run_create_parses_to_the_service_arguments():
    run_id = uuid.uuid4()
    fields = inputs.run_create_parse({
        "experiment": " sweep ", "id": str(run_id), "start_time": 1_700_000_000_000, "tags": {"a": 5},
        "source": {"git_dirty": None, "host": "h", "packages": None}, "seed": None, "parent_run_id": None,
    })
    assert fields == {"experiment": "sweep", "run_id": run_id, "tags": [("a", "5")], "source": {"host": "h"},
                      "start_time": fields["start_time"]}
    assert fields["start_time"].timestamp() == 1_700_000_000


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _request_schema(schema: dict, path: str, method: str) -> dict:
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return {**body, "components": schema["components"]}


@pytest.mark.parametrize(("path", "method", "body"), [
    ("/api/v1/projects/{slug}/runs/", "post",
     {"experiment": "e", "id": str(uuid.uuid4()), "name": "n", "start_time": 1, "tags": {"k": "v"},
      "source": {"git_commit": "abc", "git_dirty": False, "packages": {"numpy": "2.1"}}, "seed": 3}),
    ("/api/v1/runs/{run_id}/batch/", "post",
     {"params": [{"key": "lr", "value": "0.1"}], "metrics": [{"key": "loss", "value": "NaN", "step": 1}],
      "tags": {"team": "vision"}}),
    ("/api/v1/runs/{run_id}/", "patch", {"status": "FINISHED", "end_time": 5}),
])
def test_what_the_sdk_sends_is_what_the_schema_documents(schema, path, method, body):
    jsonschema.Draft7Validator(_request_schema(schema, path, method)).validate(body)


@pytest.mark.parametrize(("body", "field"), [
    ({"metrics": [{"key": "a b!", "value": 1}]}, "metrics[0].key"),
    ({"metrics": [{"key": "a", "value": "soon"}]}, "metrics[0].value"),
    ({"params": [{"key": "lr", "value": {"x": 1}}]}, "params[0].value"),
    ({"tags": [{"key": "k" * 251}]}, "tags[0].key"),
])
def test_what_the_schema_refuses_the_api_refuses_naming_the_field(schema, editor, project, body, field):
    run = editor.post(f"/api/v1/projects/{project.slug}/runs/", {"experiment": "e"}, format="json").json()
    validator = jsonschema.Draft7Validator(_request_schema(schema, "/api/v1/runs/{run_id}/batch/", "post"))
    assert not validator.is_valid(body)
    response = editor.post(f"/api/v1/runs/{run['id']}/batch/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    stored = Run.objects.get(pk=run["id"])
    assert not (stored.metric_points.exists() or stored.params.exists() or stored.tags.exists())
