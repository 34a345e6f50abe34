"""Hostile JSON bodies are 4xx answers in the JSON error shape, never a 500 or a partial write."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import resolve
from rest_framework.parsers import MultiPartParser

from accounts import json_input
from accounts.json_input import MAX_DEPTH, json_parse
from datasets import services as datasets
from datasets.models import Dataset, ValidationRule
from experiments.api.serializers import run_create_parse
from experiments.models import Metric, Run
from registry.models import RegisteredModel
from tests.security.conftest import api_patterns, api_routes

pytestmark = pytest.mark.django_db

DEEP = b"[" * 100_000


def post_raw(client, url: str, body: bytes, method: str = "POST", **headers):
    return client.generic(method, url, body, content_type="application/json", **headers)


# --- the parser ----------------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused():
    assert json_parse(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert json_parse(b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH) is not None
    for body in (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), DEEP, b"{\"a\":" * 5000,
                 # NaN sends the body to the standard library, which must stop at the same depth
                 b"[NaN," + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"]"):
        with pytest.raises(ValidationError) as caught:
            json_parse(body, allow_nan=True)
        assert caught.value.message_dict == {"body": [f"JSON nested deeper than {MAX_DEPTH} levels."]}


@pytest.mark.parametrize("body", [b"1],[2", b"1]", b"", b" ", b"[1] [2]", b"{]", b"\xff"])
def test_what_is_not_one_json_value_is_refused_however_it_is_bracketed(body):
    with pytest.raises(ValidationError) as caught:
        json_parse(body)
    assert list(caught.value.message_dict) == ["body"]


def test_values_orjson_refuses_are_read_as_the_standard_library_reads_them():
    assert json_parse(b"[1e400]") == [float("inf")]
    with pytest.raises(ValidationError):
        json_parse(b"[NaN]")
    assert json_parse(b"[NaN]", allow_nan=True)[0] != json_parse(b"[NaN]", allow_nan=True)[0]


def test_every_api_view_reads_json_with_the_bounded_parser():
    checked = 0
    for route in api_routes():
        view = resolve(route).func
        cls = getattr(view, "cls", None)
        if cls is None:
            continue  # the predict view: read by json_parse (tested below)
        parsers = cls().get_parsers() if hasattr(cls, "get_parsers") else []
        for parser in parsers:
            # JSON is read by the bounded parser alone; a file upload (CSV labels) may come as multipart.
            if "json" in parser.media_type:
                assert isinstance(parser, json_input.JSONParser), (route, parser)
            else:
                assert isinstance(parser, MultiPartParser), (route, parser)
        checked += 1
    assert checked > 40


# --- every endpoint --------------------------------------------------------------------------------


def test_deeply_nested_json_is_a_400_on_every_endpoint_that_reads_a_body(world, assert_json_error):
    refused = 0
    for pattern in api_patterns():
        url = world.fill(pattern)
        for method in ("POST", "PUT", "PATCH"):
            response = post_raw(world.client, url, DEEP, method=method)
            assert response.status_code < 500, (method, url, response.content[:300])
            if response.status_code == 400:
                error = assert_json_error(response, 400)
                if error["fields"] == {"body": f"JSON nested deeper than {MAX_DEPTH} levels."}:
                    refused += 1
    # Every view with a JSON body: runs, params, metrics, tags, batch, experiments, models, versions,
    # aliases, batch scoring, rules, columns, training jobs, sweeps, tokens, projects, members, predict...
    assert refused >= 20


INGEST = ["runs/{run}/metrics/", "runs/{run}/batch/", "runs/{run}/params/", "projects/{slug}/runs/",
          "serve/{slug}/iris/1/predict", "serve/{slug}/iris/staging/predict"]


def test_deep_json_on_the_ingest_and_predict_endpoints_stores_nothing(world, assert_json_error):
    runs = Run.objects.count()
    for path in INGEST:
        url = "/api/v1/" + path.format(run=world.run.pk, slug=world.project.slug)
        for body in (DEEP, b"[" * 1100 + b"]" * 1100, b'{"metrics": ' + b"[" * 2000):
            error = assert_json_error(post_raw(world.client, url, body), 400)
            assert "body" in error["fields"], (url, error)
    assert Run.objects.count() == runs and not Metric.objects.filter(run=world.run).exists()


def test_a_body_over_max_json_bytes_is_a_json_413(world, settings, assert_json_error):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = b'{"metrics": [' + b",".join([b'{"key": "loss", "value": 1.0}'] * 100) + b"]}"
    for path in [*INGEST, "projects/{slug}/models/iris/"]:
        url = "/api/v1/" + path.format(run=world.run.pk, slug=world.project.slug)
        method = "PATCH" if path.endswith("iris/") else "POST"
        error = assert_json_error(post_raw(world.client, url, body, method=method), 413)
        assert error["code"] == "payload_too_large" and "1,000 bytes" in error["message"]
    assert not Metric.objects.filter(run=world.run).exists()


# --- NUL characters and lone surrogates ------------------------------------------------------------


def test_a_nul_in_run_source_packages_is_a_400_naming_the_field(world, assert_json_error):
    url = f"/api/v1/projects/{world.project.slug}/runs/"
    runs = Run.objects.count()
    for packages, field in (({"numpy\x00": "2.0"}, "source.packages"),
                            ({"numpy": "2.0\x00"}, "source.packages.numpy"),
                            ({"numpy": {"deep": ["ok", "x\x00"]}}, "source.packages.numpy.deep[1]")):
        response = world.client.post(url, {"experiment": "e", "source": {"packages": packages}},
                                     format="json")
        assert field in assert_json_error(response, 400)["fields"], response.json()
    assert Run.objects.count() == runs


def test_a_nul_in_model_tags_is_a_400_naming_the_tag(world, assert_json_error):
    base = f"/api/v1/projects/{world.project.slug}/models/"
    created = world.client.post(base, {"name": "other", "tags": {"stage": "a\x00b"}}, format="json")
    assert assert_json_error(created, 400)["fields"] == {"tags.stage": json_input.NUL_MESSAGE}
    assert not RegisteredModel.objects.filter(name="other").exists()
    patched = world.client.patch(base + "iris/", {"tags": {"k\x00": "v"}}, format="json")
    assert "tags" in assert_json_error(patched, 400)["fields"]
    assert RegisteredModel.objects.get(name="iris").tags == {}


def test_a_nul_in_a_validation_rule_config_is_a_400_naming_the_value(world, assert_json_error):
    url = f"/api/v1/projects/{world.project.slug}/datasets/flowers/rules/"
    response = world.client.post(url, {"kind": "allowed_values", "column": "species",
                                       "config": {"values": ["setosa", "x\x00"]}}, format="json")
    assert assert_json_error(response, 400)["fields"] == {"config.values[1]": json_input.NUL_MESSAGE}
    assert ValidationRule.objects.count() == 1


def test_services_refuse_a_nul_whoever_calls_them(world):
    # The HTML forms and the training worker call these without the API's parser.
    with pytest.raises(ValidationError) as caught:
        datasets.validation_rule_create(dataset=Dataset.objects.get(name="flowers"), kind="allowed_values",
                                        column="species", config={"values": ["a\x00"]})
    assert list(caught.value.message_dict) == ["config.values[0]"]


def test_the_run_body_schema_refuses_a_nul_that_no_parser_saw():
    # A body parsed by another path than the JSON parser (the MLflow-compatible API's) meets the same rule.
    with pytest.raises(ValidationError) as caught:
        run_create_parse({"experiment": "e", "source": {"packages": {"a": "\x00"}}})
    assert list(caught.value.message_dict) == ["source.packages.a"]


def test_a_nul_or_lone_surrogate_in_a_training_spec_is_a_400_naming_it(world, assert_json_error):
    url = f"/api/v1/projects/{world.project.slug}/training-jobs/"
    for raw, field in ((b'"target": "species\\u0000"', "spec.target"),
                       (b'"params": {"C": "\\ud800"}', "spec.params.C")):
        body = (b'{"experiment": "e", "spec": {"dataset_version": %d, "task": "classification", '
                b'"estimator": "logistic_regression", ' % world.dataset_version_id) + raw + b"}}"
        response = post_raw(world.client, url, body)
        assert field in assert_json_error(response, 400)["fields"], response.json()


def test_a_lone_surrogate_anywhere_in_a_body_is_a_400_naming_it(world, assert_json_error):
    body = b'{"key": "a", "value": "\\udc00"}'
    response = post_raw(world.client, f"/api/v1/runs/{world.run.pk}/tags/", body)
    assert "value" in assert_json_error(response, 400)["fields"]


# --- metric keys that are not strings --------------------------------------------------------------


def test_a_metric_key_that_is_not_a_string_is_a_400_naming_it(world, assert_json_error):
    run = world.run.pk
    for key in (["loss"], {"name": "loss"}, 1, None, True):
        response = world.client.post(f"/api/v1/runs/{run}/metrics/", [{"key": key, "value": 1.0}],
                                     format="json")
        assert "metrics[0].key" in assert_json_error(response, 400)["fields"]
        response = world.client.post(f"/api/v1/runs/{run}/batch/",
                                     {"metrics": [{"key": "ok", "value": 1.0}, {"key": key, "value": 2.0}]},
                                     format="json")
        assert "metrics[1].key" in assert_json_error(response, 400)["fields"]
    assert not Metric.objects.filter(run=world.run).exists()
