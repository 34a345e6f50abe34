"""Search where the filter and the sort name the same metric, param or tag.

Such a condition is checked on the row joined for sorting, so these tests pin
that the results, their order and paging are the same as for any other search.
"""

import math

import pytest

from experiments.api.views import run_output
from experiments.models import Run
from tests.experiments.test_search import make_run, names, url, walk
from tests.factories import ExperimentFactory, UserFactory


@pytest.fixture
def sweep(project):
    """30 runs: acc in 6 tied values, some NaN or missing; model in 3 values, some missing."""
    experiment = ExperimentFactory(project=project, name="sweep")
    author = UserFactory(username="carol")
    made = {}
    for i in range(30):
        if i % 10 == 3:
            metrics = {"acc": [0.5, math.nan]}
        elif i % 10 == 7:
            metrics = {}
        else:
            metrics = {"acc": (i % 6) / 10}
        params = {"model": ["rf", "lr", "gb"][i % 3]} if i % 8 else {}
        made[f"r{i:02d}"] = make_run(
            experiment, f"r{i:02d}", minutes=i // 4, metrics=metrics, params=params,
            tags={"team": ["a", "b"][i % 2]}, author=author if i % 2 else None,
        )
    return made


def acc_of(run: Run):
    latest = {m.key: m.value for m in run.latest_metrics.all()}
    return latest.get("acc")


def expected_order(runs, keep, *, descending):
    chosen = [r for r in runs.values() if keep(r)]
    # Ties fall to the run id, ascending, whichever way the value sorts.
    chosen.sort(key=lambda r: str(r.pk))
    chosen.sort(key=lambda r: acc_of(r), reverse=descending)
    return [r.name for r in chosen]


@pytest.mark.django_db
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize(
    ("filter_string", "keep"),
    [
        ("metrics.acc > 0.15", lambda v: v > 0.15),
        ("metrics.acc >= 0.2", lambda v: v >= 0.2),
        ("metrics.acc < 0.3", lambda v: v < 0.3),
        ("metrics.acc <= 0.3", lambda v: v <= 0.3),
        ("metrics.acc = 0.4", lambda v: v == 0.4),
        ("metrics.acc != 0.4", lambda v: v != 0.4),
    ],
)
def test_filter_and_sort_on_one_metric_match_a_plain_sort(
    viewer, project, sweep, filter_string, keep, descending
):
    direction = "DESC" if descending else "ASC"
    want = expected_order(
        sweep, lambda r: acc_of(r) is not None and keep(acc_of(r)), descending=descending
    )
    assert want  # each case keeps some runs and drops others
    got = names(viewer.get(url(project), {"filter": filter_string, "order_by": f"metrics.acc {direction}",
                                          "max_results": 1000}))
    assert got == want
    seen, _ = walk(viewer, project, filter=filter_string, order_by=[f"metrics.acc {direction}"])
    assert seen == want


@pytest.mark.django_db
def test_paging_with_the_filter_on_the_sort_key_and_other_conditions(viewer, project, sweep):
    query = {"filter": "metrics.acc >= 0.1 and params.model IN ('rf', 'gb') and tags.team = 'b'",
             "order_by": ["metrics.acc DESC", "attributes.start_time ASC"]}
    everything = names(viewer.get(url(project), {**query, "max_results": 1000}))
    runs = [sweep[n] for n in everything]
    assert runs and all(acc_of(r) >= 0.1 for r in runs)
    assert all(r.params.get(key="model").value in ("rf", "gb") for r in runs)
    assert all(r.tags.get(key="team").value == "b" for r in runs)
    values = [(-acc_of(r), r.start_time) for r in runs]
    assert values == sorted(values)
    seen, _ = walk(viewer, project, method="post", **query)
    assert seen == everything


@pytest.mark.django_db
def test_the_same_key_sorted_twice_and_filtered_twice(viewer, project, sweep):
    query = {"filter": "metrics.acc != 0.1 and metrics.acc <= 0.4",
             "order_by": ["metrics.acc DESC", "metrics.acc ASC"]}
    everything = names(viewer.get(url(project), {**query, "max_results": 1000}))
    want = expected_order(
        sweep, lambda r: acc_of(r) is not None and acc_of(r) != 0.1 and acc_of(r) <= 0.4, descending=True
    )
    assert everything == want
    seen, _ = walk(viewer, project, **query)
    assert seen == want


@pytest.mark.django_db
def test_param_and_tag_sorted_and_filtered_on_the_same_key(viewer, project, sweep):
    query = {"filter": "params.model LIKE '%r%' and params.model NOT IN ('x')",
             "order_by": "params.model DESC", "max_results": 1000}
    by_model = names(viewer.get(url(project), query))
    models = [sweep[n].params.get(key="model").value for n in by_model]
    assert set(models) == {"rf", "lr"} and models == sorted(models, reverse=True)
    assert len(by_model) == sum(1 for r in sweep.values() if r.params.filter(value__in=["rf", "lr"]).exists())
    by_team = names(viewer.get(url(project), {"filter": "tags.team = 'a'", "order_by": "tags.team",
                                              "max_results": 1000}))
    assert by_team == sorted((n for n in sweep if int(n[1:]) % 2 == 0), key=lambda n: str(sweep[n].pk))


@pytest.mark.django_db
def test_found_runs_carry_their_params_metrics_tags_and_author(viewer, project):
    experiment = ExperimentFactory(project=project, name="edge")
    alice = UserFactory(username="alice")
    make_run(experiment, "inf", author=alice, params={"model": "rf", "lr": "0.1"},
             metrics={"acc": math.inf, "loss": -math.inf, "gap": math.nan, "f1": 0.1 + 0.2},
             tags={"team": "vision", "note": 'quote " and \\ backslash'})
    make_run(experiment, "bare", minutes=1)
    body = viewer.get(url(project), {"order_by": "attributes.name", "max_results": 10}).json()
    assert [r["name"] for r in body["runs"]] == ["bare", "inf"]
    for found in body["runs"]:
        run = Run.objects.get(name=found["name"])
        assert found == run_output(run)
    inf = body["runs"][1]
    assert inf["author"] == "alice" and body["runs"][0]["author"] is None
    assert {k: m["value"] for k, m in inf["metrics"].items()} == {
        "acc": "Infinity", "loss": "-Infinity", "gap": "NaN", "f1": 0.1 + 0.2,
    }
    assert inf["params"] == {"model": "rf", "lr": "0.1"}
    assert inf["tags"]["note"] == 'quote " and \\ backslash'
    assert body["runs"][0]["params"] == {} and body["runs"][0]["metrics"] == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filter_string",
    [
        "metrics.acc > 0.1; DROP TABLE experiments_run",
        "metrics.acc > 0.1 -- comment",
        "metrics.acc > (SELECT 1)",
        "metrics.`acc\" OR 1=1 --` > 0",
    ],
)
def test_injection_attempts_on_the_sorted_key_are_400(viewer, project, sweep, filter_string):
    response = viewer.get(url(project), {"filter": filter_string, "order_by": "metrics.acc DESC"})
    assert response.status_code == 400
    assert "filter" in response.json()["error"]["fields"]
    assert Run.objects.count() == 30


@pytest.mark.django_db
def test_quotes_in_a_value_on_the_sorted_key_are_plain_text(viewer, project, sweep):
    response = viewer.get(url(project), {"filter": "params.model = 'rf'' OR ''1''=''1'",
                                         "order_by": "params.model"})
    assert names(response) == []
