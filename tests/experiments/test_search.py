import base64
import datetime as dt
import json
import math

import pytest

from experiments import search, services
from experiments.api.views import run_output
from experiments.models import RunStatus
from experiments.services import MetricPoint
from tests.factories import ExperimentFactory, ProjectFactory, RunFactory, UserFactory

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def ms(when: dt.datetime) -> int:
    return int((when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds() * 1000)


def make_run(experiment, name, *, minutes=0, params=None, metrics=None, tags=None, **fields):
    run = RunFactory(
        experiment=experiment, name=name, start_time=BASE + dt.timedelta(minutes=minutes), **fields
    )
    services.params_log(run=run, pairs=list((params or {}).items()))
    points = []
    for key, values in (metrics or {}).items():
        values = values if isinstance(values, list) else [values]
        points += [MetricPoint(key, value, step, 1000 + step) for step, value in enumerate(values)]
    services.metrics_log(run=run, points=points)
    services.tags_set(run=run, pairs=list((tags or {}).items()))
    return run


@pytest.fixture
def runs(project):
    """Four runs in two experiments, plus a run in another project that must never show up."""
    train = ExperimentFactory(project=project, name="train")
    tune = ExperimentFactory(project=project, name="tune")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    made = {
        "a": make_run(
            train, "a", minutes=1, author=alice, status=RunStatus.FINISHED,
            end_time=BASE + dt.timedelta(minutes=5),
            params={"model": "rf", "lr": "0.01", "my key": "Hello World", "note": "it's", "code": "a_b"},
            metrics={"acc": 0.95, "val/loss": 0.2},
            tags={"team": "vision"},
        ),
        "b": make_run(
            train, "b", minutes=2, author=bob, status=RunStatus.FAILED,
            end_time=BASE + dt.timedelta(minutes=10),
            params={"model": "RF-large", "lr": "0.1", "code": "axb"},
            metrics={"acc": 0.8, "val/loss": 0.9},
            tags={"team": "nlp"},
        ),
        # The latest acc is NaN, so acc never matches although 0.7 was logged first.
        "c": make_run(train, "c", minutes=3, status=RunStatus.RUNNING,
                      params={"model": "svm"}, metrics={"acc": [0.7, math.nan]}),
        "d": make_run(tune, "d", minutes=4, status=RunStatus.FINISHED,
                      params={"model": "rf"}, tags={"team": "vision"}),
    }
    other = ExperimentFactory(project=ProjectFactory(), name="train")
    make_run(other, "elsewhere", params={"model": "rf"}, metrics={"acc": 0.99}, tags={"team": "vision"})
    return made


def url(project):
    return f"/api/v1/projects/{project.slug}/runs/search/"


def names(response):
    assert response.status_code == 200, response.json()
    return [r["name"] for r in response.json()["runs"]]


def found(client, project, filter_string, **params):
    return set(names(client.get(url(project), {"filter": filter_string, **params})))


@pytest.mark.django_db
def test_metric_comparators(viewer, project, runs):
    cases = [
        ("metrics.acc > 0.9", {"a"}),
        ("metrics.acc >= 0.8", {"a", "b"}),
        ("metrics.acc < 0.9", {"b"}),
        ("metrics.acc <= 0.95", {"a", "b"}),
        ("metrics.acc = 0.8", {"b"}),
        ("metrics.acc != 0.8", {"a"}),
        ("metrics.acc > -1e3", {"a", "b"}),
        ("metrics.acc >= 8e-1", {"a", "b"}),
        ("metrics.acc > .9", {"a"}),
        ("metric.acc < 0.81", {"b"}),
    ]
    for filter_string, expected in cases:
        assert found(viewer, project, filter_string) == expected, filter_string


@pytest.mark.django_db
def test_param_comparators(viewer, project, runs):
    cases = [
        ("params.model = 'rf'", {"a", "d"}),
        ("params.model != 'rf'", {"b", "c"}),
        ("params.model LIKE 'rf%'", {"a", "d"}),
        ("params.model like 'RF%'", {"b"}),
        ("params.model ILIKE 'rf%'", {"a", "b", "d"}),
        ("params.model LIKE '_f'", {"a", "d"}),
        ("params.model IN ('svm', 'rf')", {"a", "c", "d"}),
        ("params.model NOT IN ('svm', 'rf')", {"b"}),
        ("param.lr = '0.1'", {"b"}),
        ("parameters.lr != '0.1'", {"a"}),
    ]
    for filter_string, expected in cases:
        assert found(viewer, project, filter_string) == expected, filter_string


@pytest.mark.django_db
def test_tag_comparators(viewer, project, runs):
    cases = [
        ("tags.team = 'vision'", {"a", "d"}),
        ("tags.team != 'vision'", {"b"}),
        ("tags.team LIKE 'vis%'", {"a", "d"}),
        ("tags.team ILIKE 'NLP'", {"b"}),
        ("tag.team IN ('nlp')", {"b"}),
        ("tags.team NOT IN ('nlp')", {"a", "d"}),
    ]
    for filter_string, expected in cases:
        assert found(viewer, project, filter_string) == expected, filter_string


@pytest.mark.django_db
def test_attribute_comparators(viewer, project, runs):
    a, b = runs["a"], runs["b"]
    cases = [
        ("attributes.status = 'FINISHED'", {"a", "d"}),
        ("attributes.status != 'FINISHED'", {"b", "c"}),
        ("attributes.status IN ('FAILED', 'RUNNING')", {"b", "c"}),
        ("attributes.status NOT IN ('FAILED', 'RUNNING')", {"a", "d"}),
        ("attributes.name = 'c'", {"c"}),
        ("attributes.run_name LIKE '_'", {"a", "b", "c", "d"}),
        ("attributes.author = 'alice'", {"a"}),
        ("attributes.author != 'alice'", {"b"}),
        ("attributes.author ILIKE 'BO%'", {"b"}),
        ("attributes.experiment = 'tune'", {"d"}),
        ("attributes.experiment != 'tune'", {"a", "b", "c"}),
        ("attributes.experiment LIKE 't%n'", {"a", "b", "c"}),
        (f"attributes.run_id = '{a.pk}'", {"a"}),
        (f"attributes.id IN ('{a.pk}', '{b.pk}')", {"a", "b"}),
        (f"attributes.run_id NOT IN ('{a.pk}')", {"b", "c", "d"}),
        (f"attributes.start_time > {ms(BASE + dt.timedelta(minutes=2))}", {"c", "d"}),
        (f"attributes.start_time >= {ms(BASE + dt.timedelta(minutes=2))}", {"b", "c", "d"}),
        (f"attributes.start_time = {ms(BASE + dt.timedelta(minutes=3))}", {"c"}),
        (f"attributes.start_time != {ms(BASE + dt.timedelta(minutes=3))}", {"a", "b", "d"}),
        (f"attributes.start_time < {ms(BASE + dt.timedelta(minutes=2))}", {"a"}),
        (f"attributes.start_time <= {ms(BASE + dt.timedelta(minutes=2))}", {"a", "b"}),
        # Runs without an end time match no comparison on it.
        (f"attributes.end_time != {ms(BASE + dt.timedelta(minutes=5))}", {"b"}),
        (f"attr.end_time < {ms(BASE + dt.timedelta(minutes=6))}", {"a"}),
        ("run.end_time >= 0", {"a", "b"}),
    ]
    for filter_string, expected in cases:
        assert found(viewer, project, filter_string) == expected, filter_string


@pytest.mark.django_db
def test_conditions_are_joined_with_and_in_any_case(viewer, project, runs):
    text = ("metrics.acc > 0.9 and params.model = 'rf' AND tags.team = 'vision' "
            "And attributes.status = 'FINISHED'")
    assert found(viewer, project, text) == {"a"}
    assert found(viewer, project, "metrics.acc > 0.5 and params.model = 'RF-large'") == {"b"}
    assert found(viewer, project, "  ") == {"a", "b", "c", "d"}


@pytest.mark.django_db
def test_quoted_keys_and_strings(viewer, project, runs):
    assert found(viewer, project, "metrics.`val/loss` < 0.5") == {"a"}
    assert found(viewer, project, 'metrics."val/loss" > 0.5') == {"b"}
    assert found(viewer, project, "params.`my key` = 'Hello World'") == {"a"}
    assert found(viewer, project, 'params."my key" = "Hello World"') == {"a"}
    assert found(viewer, project, r"params.note = 'it\'s'") == {"a"}
    assert found(viewer, project, "params.note = 'it''s'") == {"a"}
    assert found(viewer, project, "params.note = \"it's\"") == {"a"}
    # An escaped underscore is a literal one, not a LIKE wildcard.
    assert found(viewer, project, r"params.code LIKE 'a\_b'") == {"a"}
    assert found(viewer, project, "params.code LIKE 'a_b'") == {"a", "b"}


@pytest.mark.django_db
def test_parse_filter_reads_numbers_strings_and_prefixes():
    conditions = search.parse_filter(
        "metrics.`val/loss` <= -1.5e-3 and params.\"a b\" = 'x\\ny' and tags.t IN ('p', \"q\") "
        "and attributes.run_name ILIKE '%z' and metrics.m > +2"
    )
    assert [(c.kind, c.key, c.op, c.value) for c in conditions] == [
        ("metric", "val/loss", "<=", -1.5e-3),
        ("param", "a b", "=", "x\ny"),
        ("tag", "t", "IN", ["p", "q"]),
        ("attribute", "name", "ILIKE", "%z"),
        ("metric", "m", ">", 2.0),
    ]


@pytest.mark.django_db
def test_nan_metric_matches_no_comparison(viewer, project, runs):
    # Run c logged acc 0.7, then NaN as its latest value.
    for text in ("metrics.acc = 0.7", "metrics.acc != 0.5", "metrics.acc < 1e300", "metrics.acc > -1e300"):
        assert "c" not in found(viewer, project, text), text
    body = viewer.get(url(project), {"filter": "attributes.name = 'c'"}).json()
    assert body["runs"][0]["metrics"]["acc"]["value"] == "NaN"


@pytest.mark.django_db
def test_order_by_metric_puts_missing_values_last_both_ways(viewer, project, runs):
    # c has NaN, d has no acc at all: both go last, tie broken by run id.
    tail = sorted(["c", "d"], key=lambda n: str(runs[n].pk))
    desc = names(viewer.get(url(project), {"order_by": "metrics.acc DESC"}))
    asc = names(viewer.get(url(project), {"order_by": "metrics.acc ASC"}))
    assert desc == ["a", "b", *tail]
    assert asc == ["b", "a", *tail]
    assert names(viewer.get(url(project), {"order_by": "metrics.acc"})) == asc


@pytest.mark.django_db
def test_order_by_params_tags_and_attributes(viewer, project, runs):
    # Param values sort as strings; runs without the param go last.
    assert names(viewer.get(url(project), {"order_by": "params.lr DESC"}))[:2] == ["b", "a"]
    assert names(viewer.get(url(project), {"order_by": "params.lr ASC"}))[:2] == ["a", "b"]
    by_team = names(viewer.get(url(project), {"order_by": ["tags.team", "attributes.name DESC"]}))
    assert by_team == ["b", "d", "a", "c"]
    assert names(viewer.get(url(project))) == ["d", "c", "b", "a"]
    assert names(viewer.get(url(project), {"order_by": "attributes.start_time ASC"})) == ["a", "b", "c", "d"]
    by_end = names(viewer.get(url(project), {"order_by": "attributes.end_time DESC"}))
    assert by_end[:2] == ["b", "a"]
    assert names(viewer.get(url(project), {"order_by": "attributes.author"}))[:2] == ["a", "b"]


@pytest.fixture
def many_runs(project):
    """25 runs with shared start times, missing metrics and missing params, to stress paging."""
    experiment = ExperimentFactory(project=project, name="sweep")
    made = []
    for i in range(25):
        metrics = {"acc": (i % 7) / 10} if i % 4 else {}
        params = {"lr": str(i % 3)} if i % 5 else {}
        made.append(make_run(experiment, f"r{i:02d}", minutes=i // 3, metrics=metrics, params=params,
                             end_time=BASE + dt.timedelta(hours=i % 2) if i % 3 else None))
    return made


def walk(client, project, method="get", **params):
    seen, token, pages = [], None, 0
    while True:
        query = dict(params, max_results=4)
        if token:
            query["page_token"] = token
        if method == "get":
            response = client.get(url(project), query)
        else:
            response = client.post(url(project), query, format="json")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert len(body["runs"]) <= 4
        seen += [r["name"] for r in body["runs"]]
        token = body["next_page_token"]
        pages += 1
        if token is None:
            return seen, pages
        assert pages < 50


@pytest.mark.django_db
@pytest.mark.parametrize(
    "order_by",
    [
        [],
        ["metrics.acc DESC"],
        ["metrics.acc ASC"],
        ["params.lr ASC", "metrics.acc DESC"],
        ["attributes.end_time ASC"],
        ["attributes.start_time ASC"],
        ["attributes.name DESC"],
    ],
)
def test_pagination_walks_every_run_exactly_once(viewer, project, many_runs, order_by):
    everything = names(viewer.get(url(project), {"order_by": order_by, "max_results": 1000}))
    assert len(everything) == 25
    seen, pages = walk(viewer, project, order_by=order_by)
    assert seen == everything
    assert pages == 7


@pytest.mark.django_db
def test_pagination_by_post_with_a_filter(viewer, project, many_runs):
    seen, _ = walk(viewer, project, method="post", filter="metrics.acc >= 0.2",
                   order_by=["metrics.acc DESC"], experiment="sweep")
    expected = [r.name for r in many_runs if r.latest_metrics.filter(value__gte=0.2).exists()]
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


@pytest.mark.django_db
def test_a_run_created_while_paging_does_not_shift_pages(viewer, project, many_runs):
    first = viewer.get(url(project), {"max_results": 10}).json()
    make_run(many_runs[0].experiment, "newest", minutes=999)
    rest, _ = walk(viewer, project, page_token=first["next_page_token"])
    seen = [r["name"] for r in first["runs"]] + [n for n in rest]
    assert "newest" not in seen
    assert sorted(seen) == sorted(r.name for r in many_runs)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "bm90IGpzb24",
        base64.urlsafe_b64encode(b'{"v": [1], "id": "x", "q": "y"}').decode(),
        "A" * 30000,
    ],
)
def test_bad_page_token_is_400_on_page_token(viewer, project, many_runs, token):
    response = viewer.get(url(project), {"page_token": token})
    assert response.status_code == 400
    assert "page_token" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_page_token_of_another_search_is_refused(viewer, project, many_runs):
    token = viewer.get(url(project), {"max_results": 3}).json()["next_page_token"]
    response = viewer.get(url(project), {"max_results": 3, "page_token": token, "order_by": "metrics.acc"})
    assert response.status_code == 400
    assert "different search" in response.json()["error"]["fields"]["page_token"]


@pytest.mark.django_db
def test_tampered_page_token_values_are_400(viewer, project, many_runs):
    token = viewer.get(url(project), {"max_results": 3}).json()["next_page_token"]
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for bad in (["not a time"], [None], [12], ["2024-01-01T00:00:00"]):
        forged = base64.urlsafe_b64encode(json.dumps(dict(data, v=bad)).encode()).decode()
        response = viewer.get(url(project), {"max_results": 3, "page_token": forged})
        assert response.status_code == 400, bad
        assert "page_token" in response.json()["error"]["fields"]


MALFORMED = [
    "params.x = '1' or 1=1 --",
    "params.x = '1'; DROP TABLE experiments_run",
    "params.x = '1' --",
    "metrics.acc > 0.9 OR",
    "(metrics.acc > 1",
    "metrics.acc > 1)",
    "()",
    "params.x > 'rbf'",
    "params.x IN ('a', 1)",
    "foo.x = 1",
    "acc > 1",
    "attributes.colour = 'red'",
    "params.x = 'unterminated",
    "params.x = \"unterminated",
    "metrics.`val/loss > 1",
    "params.x > 'a'",
    "tags.x < 'a'",
    "metrics.acc = 'high'",
    "metrics.acc LIKE '1%'",
    "metrics.acc IN (1, 2)",
    "params.x LIKE 1",
    "attributes.start_time = 'yesterday'",
    "attributes.start_time LIKE '2024%'",
    "attributes.run_id LIKE 'abc%'",
    "attributes.run_id = 'not-a-uuid'",
    "metrics.acc >",
    "metrics.acc > 1 and",
    "and metrics.acc > 1",
    "metrics.acc > 1 metrics.loss < 2",
    "(metrics.acc > 1) (metrics.acc < 2)",
    "params.x IN ()",
    "params.x IN ('a'",
    "params.x IN 'a'",
    "params.x NOT LIKE 'a'",
    "metrics.acc == 1",
    "metrics.acc > 1e999",
    "metrics.acc > 1.2.3",
    "metrics.bad$key > 1",
    "metrics. > 1",
    "params.`` = 'a'",
    "`acc` > 1",
    "metrics.acc > NaN",
    "params.x = 'a' and params.y = 'b' and",
]


@pytest.mark.django_db
def test_malformed_filter_is_400_naming_filter_with_a_position(viewer, project, runs):
    for filter_string in MALFORMED:
        for response in (
            viewer.get(url(project), {"filter": filter_string}),
            viewer.post(url(project), {"filter": filter_string}, format="json"),
        ):
            assert response.status_code == 400, filter_string
            assert "position" in response.json()["error"]["fields"]["filter"], filter_string
    # Nothing was run as SQL: every run is still there.
    assert found(viewer, project, "") == {"a", "b", "c", "d"}


@pytest.mark.django_db
def test_an_injection_attempt_with_or_is_refused_at_its_position(viewer, project, runs):
    response = viewer.get(url(project), {"filter": "params.x = '1' or 1=1 --"})
    assert response.json()["error"]["fields"]["filter"].endswith("found '1' (at position 19)")


@pytest.mark.django_db
def test_filter_with_nul_or_too_long_is_400(viewer, project):
    for text in ("params.x = 'a\x00'", "metrics.a > 1 and " * 1000):
        response = viewer.post(url(project), {"filter": text}, format="json")
        assert response.status_code == 400
        assert "filter" in response.json()["error"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "order_by",
    ["metrics.acc SIDEWAYS", "acc", "attributes.colour", "metrics.acc DESC DESC", "params.x, params.y"],
)
def test_malformed_order_by_is_400(viewer, project, order_by):
    response = viewer.get(url(project), {"order_by": order_by})
    assert response.status_code == 400
    assert "order_by" in response.json()["error"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize("max_results", ["0", "1001", "abc", "-5"])
def test_max_results_out_of_range_is_400(viewer, project, max_results):
    response = viewer.get(url(project), {"max_results": max_results})
    assert response.status_code == 400
    assert "max_results" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_runs_search_checks_its_arguments_for_other_callers(project):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        search.runs_search_rows(project=project, max_results=0)
    assert "max_results" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        search.runs_search_rows(project=project, order_by=["metrics.acc UP"])
    assert "order_by" in error.value.message_dict


@pytest.mark.django_db
def test_search_is_limited_to_named_experiments(viewer, project, runs):
    assert found(viewer, project, "", experiment="tune") == {"d"}
    assert found(viewer, project, "", experiment=["tune", "train"]) == {"a", "b", "c", "d"}
    body = viewer.post(url(project), {"experiment": ["train"], "filter": "params.model = 'rf'"},
                       format="json")
    assert names(body) == ["a"]
    body = viewer.post(url(project), {"experiment": "tune"}, format="json")
    assert names(body) == ["d"]


@pytest.mark.django_db
def test_unknown_experiment_is_404(viewer, project, runs):
    response = viewer.get(url(project), {"experiment": "nope"})
    assert response.status_code == 404
    response = viewer.post(url(project), {"experiment": ["train", "nope"]}, format="json")
    assert response.status_code == 404


@pytest.mark.django_db
def test_runs_of_other_projects_never_show(viewer, project, runs):
    assert "elsewhere" not in found(viewer, project, "params.model = 'rf'")
    assert "elsewhere" not in found(viewer, project, "", experiment="train")


@pytest.mark.django_db
def test_non_member_gets_404(outsider, project, runs):
    assert outsider.get(url(project)).status_code == 404
    assert outsider.post(url(project), {}, format="json").status_code == 404
    # Even a malformed filter reveals nothing about the project.
    assert outsider.get(url(project), {"filter": "or"}).status_code == 404


@pytest.mark.django_db
def test_anonymous_is_refused(client, project, runs):
    assert client.get(url(project)).status_code in (401, 403)


@pytest.mark.django_db
def test_viewer_can_search_and_gets_full_runs(viewer, project, runs):
    response = viewer.post(url(project), {"filter": "metrics.acc > 0.9"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["next_page_token"] is None
    run = runs["a"]
    run.refresh_from_db()
    assert body["runs"] == [run_output(run)]
    assert body["runs"][0]["params"]["model"] == "rf"
    assert body["runs"][0]["metrics"]["acc"]["value"] == 0.95
    assert body["runs"][0]["tags"] == {"team": "vision"}


@pytest.mark.django_db
def test_query_count_does_not_grow_with_the_page(viewer, project, many_runs, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = viewer.get(url(project), {"max_results": 25, "order_by": "metrics.acc DESC"})
    assert len(response.json()["runs"]) == 25


@pytest.mark.django_db
def test_every_searched_run_reads_as_the_run_endpoint_shows_it(viewer, project, runs):
    run = runs["d"]
    run.packages = {"numpy": "2.1.0", "nested": {"big": 2**70, "list": [1, 2.5, None]}}
    run.git_commit, run.host, run.seed, run.notes = "abc123", "höst-ü", 42, "naïve ☃"
    run.save()
    services.metrics_log(
        run=run, points=[MetricPoint("inf", math.inf, 0, 5), MetricPoint("ninf", -math.inf, 0, 5)]
    )

    body = viewer.get(url(project), {"max_results": 10}).json()

    assert len(body["runs"]) == 4
    for found in body["runs"]:
        assert found == viewer.get(f"/api/v1/runs/{found['id']}/").json()
    shown = {r["name"]: r for r in body["runs"]}
    assert shown["c"]["metrics"]["acc"]["value"] == "NaN"
    assert shown["d"]["metrics"]["inf"]["value"] == "Infinity"
    assert shown["d"]["source"]["packages"]["nested"]["big"] == 2**70


@pytest.mark.django_db
def test_search_errors_keep_the_json_error_shape(viewer, project, runs):
    response = viewer.get(url(project), {"filter": "metrics.acc >"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "filter" in response.json()["error"]["fields"]
