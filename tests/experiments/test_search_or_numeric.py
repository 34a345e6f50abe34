"""OR, parentheses and numeric comparison of params in the run filter language."""

import pytest

from experiments import search
from tests.experiments.test_search import found, make_run, url
from tests.factories import ExperimentFactory


@pytest.fixture
def grid(project):
    experiment = ExperimentFactory(project=project, name="grid")
    specs = {
        "r1": {"model": "rf", "C": "0.1", "depth": "3"},
        "r2": {"model": "rf", "C": "1.0", "depth": "None"},
        "r3": {"model": "gb", "C": "10", "depth": "12"},
        "r4": {"model": "svm", "C": "rbf", "depth": "5"},
        "r5": {"model": "gb", "C": "1e-2", "depth": "7"},
    }
    for minute, (name, params) in enumerate(specs.items()):
        make_run(experiment, name, minutes=minute, params=params, metrics={"acc": 0.5 + minute / 10})
    return specs


@pytest.mark.django_db
def test_or_matches_runs_meeting_either_condition(viewer, project, grid):
    assert found(viewer, project, "params.model = 'svm' OR params.model = 'gb'") == {"r3", "r4", "r5"}
    assert found(viewer, project, "params.model = 'svm' or metrics.acc >= 0.9") == {"r4", "r5"}


@pytest.mark.django_db
def test_and_binds_tighter_than_or_and_parentheses_change_it(viewer, project, grid):
    text = "params.model = 'rf' AND params.depth = '3' OR params.model = 'svm'"
    assert found(viewer, project, text) == {"r1", "r4"}
    text = "params.model = 'rf' AND (params.depth = '3' OR params.model = 'svm')"
    assert found(viewer, project, text) == {"r1"}
    text = "((params.model = 'gb') and (metrics.acc > 0.75 or params.C = '10'))"
    assert found(viewer, project, text) == {"r3", "r5"}


@pytest.mark.django_db
def test_or_groups_page_and_sort_like_any_filter(viewer, project, grid):
    body = viewer.get(url(project), {"filter": "params.model = 'gb' or params.model = 'rf'",
                                     "order_by": "metrics.acc DESC", "max_results": 2}).json()
    assert [r["name"] for r in body["runs"]] == ["r5", "r3"]
    rest = viewer.get(url(project), {"filter": "params.model = 'gb' or params.model = 'rf'",
                                     "order_by": "metrics.acc DESC", "max_results": 2,
                                     "page_token": body["next_page_token"]}).json()
    assert [r["name"] for r in rest["runs"]] == ["r2", "r1"]


@pytest.mark.django_db
def test_a_param_compared_with_a_number_compares_as_numbers(viewer, project, grid):
    # As text '10' < '5' and '1e-2' > '0.5'; as numbers neither holds.
    assert found(viewer, project, "params.C > 0.5") == {"r2", "r3"}
    assert found(viewer, project, "params.C <= 0.1") == {"r1", "r5"}
    assert found(viewer, project, "params.depth >= 5") == {"r3", "r4", "r5"}
    assert found(viewer, project, "params.C = 1") == {"r2"}
    assert found(viewer, project, "params.C != 1") == {"r1", "r3", "r5"}
    assert found(viewer, project, "params.depth IN (3, 12)") == {"r1", "r3"}
    # A quoted number with an order comparison is a number too.
    assert found(viewer, project, "params.C > '0.5'") == {"r2", "r3"}


@pytest.mark.django_db
def test_values_that_are_not_numbers_never_match_a_numeric_comparison(viewer, project, grid):
    # r4 has C = 'rbf' and r2 depth = 'None': they match neither side.
    assert "r4" not in found(viewer, project, "params.C > -1e30") | found(viewer, project, "params.C < 1e30")
    either = found(viewer, project, "params.depth > 0") | found(viewer, project, "params.depth != 0")
    assert "r2" not in either


@pytest.mark.django_db
def test_a_param_ordered_against_text_is_an_error_naming_the_param(viewer, project, grid):
    response = viewer.get(url(project), {"filter": "params.kernel > 'rbf'"})
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["filter"]
    assert "params.kernel" in message and "not a number" in message and "position 17" in message


def test_unbalanced_or_too_deep_parentheses_are_errors_with_a_position():
    for text, words in [("(metrics.a > 1", "')'"), ("metrics.a > 1)", "Unmatched"),
                        ("(" * 30 + "metrics.a > 1" + ")" * 30, "at most 20 deep")]:
        with pytest.raises(Exception) as info:
            search.parse_filter(text)
        message = info.value.message_dict["filter"][0]
        assert words in message and "position" in message, message


def test_parse_filter_returns_and_terms_with_or_groups():
    terms = search.parse_filter("metrics.a > 1 and (params.m = 'x' or params.m = 'y')")
    assert terms[0].kind == "metric"
    assert isinstance(terms[1], search.Group) and terms[1].op == "OR"
    assert [c.value for c in terms[1].items] == ["x", "y"]
