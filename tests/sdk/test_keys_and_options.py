"""Value rules and run options, which need no server: one text per value, one definition of the options."""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest
import steward
from steward.keys import metric_value, param_text
from steward.options import RunOptions


@pytest.mark.parametrize(("value", "text"), [
    (np.float64(1.0), "1.0"),
    (np.float32(0.5), "0.5"),
    (np.int64(3), "3"),
    (np.bool_(True), "True"),
    (np.str_("rbf"), "rbf"),
    (None, "None"),
    (True, "True"),
    (False, "False"),
    (1, "1"),
    (1.0, "1.0"),
    (0.1, "0.1"),
    (1e-05, "1e-05"),
    ("lbfgs", "lbfgs"),
    ([np.float64(0.5), 1], "[0.5, 1]"),
    ((np.int64(1), np.int64(2)), "(1, 2)"),
    ({"a": np.float64(2.0)}, "{'a': 2.0}"),
])
def test_a_param_value_has_one_text_mlflows(value, text):
    assert param_text(value) == text


@pytest.mark.parametrize("value", [0.5, 3, np.float32(0.25), np.int8(-4), np.float64(2.0)])
def test_real_numbers_are_metric_values(value):
    assert metric_value(value, "m") == float(value)


def test_non_finite_metric_values_are_kept_as_json_can_carry_them():
    assert metric_value(math.nan, "m") == "NaN"
    assert metric_value(np.float32("inf"), "m") == "Infinity"
    assert metric_value(-math.inf, "m") == "-Infinity"


@pytest.mark.parametrize("value", ["0.3", True, np.bool_(True), None, b"1", [1.0], np.array([1.0]), 1j])
def test_anything_else_is_a_type_error(value):
    with pytest.raises(TypeError, match="must be a number"):
        metric_value(value, "m")
    with pytest.raises(steward.InvalidInputError):  # and still the SDK's own error
        metric_value(value, "m")


def test_a_one_element_array_is_told_to_use_item():
    with pytest.raises(TypeError, match=r"call \.item\(\)"):
        metric_value(np.array([0.5]), "loss")


def _parameters(func) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p not in ("self", "url", "token")]


def test_the_run_options_are_defined_once_and_every_start_run_takes_them():
    fields = [f.name for f in dataclasses.fields(RunOptions)]
    assert _parameters(steward.start_run) == fields
    assert _parameters(steward.Client.start_run) == fields
    assert {"run_name", "description", "nested", "run_id", "log_system_metrics"} <= set(fields)
    positional = [p.name for p in inspect.signature(steward.start_run).parameters.values()
                  if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == ["project", "experiment", "name", "tags"]


def test_mlflow_names_and_steward_names_mean_the_same():
    assert RunOptions(run_name="a").name == "a" and RunOptions(name="a").run_name == "a"
    assert RunOptions(description="d").notes == "d" and RunOptions(notes="d").description == "d"
    assert RunOptions(name="a", run_name="a").run_name == "a"
    with pytest.raises(TypeError, match="both description"):
        RunOptions(description="x", notes="y")


def test_bad_options_are_refused_before_anything_is_sent():
    with pytest.raises(TypeError, match="unexpected keyword argument.*colour"):
        RunOptions.from_call((), {"colour": "red"})
    with pytest.raises(TypeError, match="at most 4 positional"):
        RunOptions.from_call(("p", "e", "n", {}, "x"), {})
    with pytest.raises(ValueError, match="run_id must be a run id"):
        RunOptions(run_id="abc")
    with pytest.raises(TypeError, match="log_system_metrics=False"):
        RunOptions(system_metrics=5, log_system_metrics=False)
    assert RunOptions(parent_run_id="3F2A9C1E00004000800000000000000A").parent_run_id == (
        "3f2a9c1e-0000-4000-8000-00000000000a")
