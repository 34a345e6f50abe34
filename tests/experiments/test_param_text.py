"""One text for one value: every path stores a param as str() of the plain Python value."""

import importlib

import numpy as np
import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from experiments import validation
from experiments.models import LatestMetric, Metric, Param, Tag
from tests.experiments.test_tracking_api import batch, run_id  # noqa: F401 - fixture
from tests.factories import RunFactory

migration = importlib.import_module("experiments.migrations.0010_canonical_param_text")

VALUES = [
    (np.float64(1.0), "1.0"), (np.int64(3), "3"), (np.bool_(True), "True"), (None, "None"),
    (True, "True"), (False, "False"), (0.1, "0.1"), (1e-5, "1e-05"), (10, "10"), ("rbf", "rbf"),
    ([np.int64(3), 4], "[3, 4]"), ((100,), "(100,)"), ({"a": np.float32(0.5)}, "{'a': 0.5}"),
]


@pytest.mark.parametrize(("value", "text"), VALUES)
def test_server_and_sdk_give_the_same_text(value, text):
    from steward.keys import param_text as sdk_param_text

    assert validation.param_text(value) == sdk_param_text(value) == text


@pytest.mark.django_db
def test_rest_stores_json_values_in_the_canonical_text(editor, run_id):  # noqa: F811
    response = batch(editor, run_id, {"params": [
        {"key": "flag", "value": True}, {"key": "depth", "value": None}, {"key": "C", "value": 1.0},
        {"key": "n", "value": 5}, {"key": "kernel", "value": "rbf"}],
        "tags": [{"key": "cv", "value": False}]})
    assert response.status_code == 201, response.content
    run = editor.get(f"/api/v1/runs/{run_id}/").json()
    assert run["params"] == {"flag": "True", "depth": "None", "C": "1.0", "n": "5", "kernel": "rbf"}
    assert run["tags"]["cv"] == "False"
    # The same value again, sent as the text it is stored as, is not a conflict.
    again = batch(editor, run_id, {"params": [{"key": "flag", "value": "True"},
                                              {"key": "depth", "value": "None"}]})
    assert again.status_code == 201, again.content


@pytest.mark.django_db
def test_rest_refuses_arrays_and_objects_naming_the_field(editor, run_id):  # noqa: F811
    response = batch(editor, run_id, {"params": [{"key": "ok", "value": 1}, {"key": "l", "value": [1, 2]}]})
    assert response.status_code == 400
    assert "params[1].value" in response.json()["error"]["fields"]
    assert editor.get(f"/api/v1/runs/{run_id}/").json()["params"] == {}


@pytest.mark.django_db
def test_filters_find_a_value_however_it_was_logged(editor, project, run_id):  # noqa: F811
    batch(editor, run_id, {"params": [{"key": "C", "value": 1.0}, {"key": "max_depth", "value": None}]})
    search = f"/api/v1/projects/{project.slug}/runs/search/"
    for text in ("params.C = '1.0'", "params.max_depth = 'None'", "params.C = 1"):
        runs = editor.get(search, {"filter": text}).json()["runs"]
        assert [r["id"] for r in runs] == [run_id], text


@pytest.mark.parametrize(("stored", "param", "tag"), [
    ("np.float64(1.0)", "1.0", "1.0"), ("np.int64(3)", "3", "3"), ("np.True_", "True", "True"),
    ("np.str_('rbf')", "rbf", "rbf"), ("[np.int64(3), np.float64(0.5)]", "[3, 0.5]", "[3, 0.5]"),
    ("{'C': np.float64(2.0)}", "{'C': 2.0}", "{'C': 2.0}"), ("true", "True", "true"),
    ("false", "False", "false"), ("", "None", ""), ("numpy", "numpy", "numpy"), ("1.0", "1.0", "1.0"),
])
def test_migration_rewrites_each_stored_form(stored, param, tag):
    assert migration.canonical(stored, param=True) == param
    assert migration.canonical(stored, param=False) == tag


@pytest.mark.django_db
def test_migration_rewrites_stored_rows_and_moves_the_fit_time_under_system():
    from training.models import TrainingRun

    run = RunFactory()
    for key, value in [("C", "np.float64(1.0)"), ("depth", ""), ("flag", "true"), ("model", "rf")]:
        Param.objects.create(run=run, key=key, value=value)
    Tag.objects.create(run=run, key="note", value="")
    trained = RunFactory()
    TrainingRun.objects.create(run=trained, spec={}, resolved_features=[])
    Param.objects.create(run=trained, key="class_weight", value='{"0": 1, "1": 5}')
    Param.objects.create(run=trained, key="hidden", value="[100, null]")
    Param.objects.create(run=run, key="script_json", value='["kept", "as", "logged"]')
    for target in (run, trained):
        Metric.objects.create(run=target, key="fit_seconds", value=1.5, step=0, timestamp=1)
        LatestMetric.objects.create(run=target, key="fit_seconds", value=1.5, step=0, timestamp=1)

    # The models as the migration knew them (some have moved to other apps since).
    state = MigrationLoader(connection).project_state(("experiments", "0010_canonical_param_text"))
    migration.forwards(state.apps, None)
    assert dict(run.params.values_list("key", "value")) == {
        "C": "1.0", "depth": "None", "flag": "True", "model": "rf", "script_json": '["kept", "as", "logged"]'}
    assert dict(trained.params.values_list("key", "value")) == {
        "class_weight": "{'0': 1, '1': 5}", "hidden": "[100, None]"}
    assert Tag.objects.get(run=run, key="note").value == ""
    # Only a training job's timing is the machine's; a script's own fit_seconds is left alone.
    assert set(Metric.objects.filter(run=trained).values_list("key", flat=True)) == {"system/fit_seconds"}
    latest = LatestMetric.objects.filter(run=trained)
    assert set(latest.values_list("key", flat=True)) == {"system/fit_seconds"}
    assert set(Metric.objects.filter(run=run).values_list("key", flat=True)) == {"fit_seconds"}
