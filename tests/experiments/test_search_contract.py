"""Run search gives the same answers on every database it supports.

The cases below run against whichever database the tests use (SQLite or
PostgreSQL, from DATABASE_URL), through the one search entry point, and expect
the same rows, order, pages and details on both. Sorted text is lower-case
ASCII letters only, so the expected order holds under any collation.
"""

import datetime as dt
import math

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from experiments import services
from experiments.models import Run, RunStatus
from experiments.search import runs_from_rows, runs_search_rows
from experiments.search.backends import PostgreSQLBackend, SQLiteBackend, search_backend
from experiments.services import MetricPoint
from tests.factories import ExperimentFactory, ProjectFactory, RunFactory, UserFactory

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def ms(minutes: int) -> int:
    return int((BASE + dt.timedelta(minutes=minutes)).timestamp() * 1000)


def make_run(experiment, name, *, minutes, end=None, params=None, metrics=None, tags=None, **fields):
    run = RunFactory(
        experiment=experiment, name=name, start_time=BASE + dt.timedelta(minutes=minutes),
        end_time=BASE + dt.timedelta(minutes=end) if end is not None else None, **fields,
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
    train = ExperimentFactory(project=project, name="train")
    tune = ExperimentFactory(project=project, name="tune")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    made = {
        "alpha": make_run(
            train, "alpha", minutes=1, end=10, status=RunStatus.FINISHED, author=alice,
            params={"model": "rf", "lr": "0.01", "depth": "3", "note": "50% off", "path": "a_b\\c",
                    "sym": "x*y", "size": "small"},
            metrics={"acc": 0.9, "loss": 0.25}, tags={"team": "vision", "stage": "prod"},
        ),
        "beta": make_run(
            train, "beta", minutes=2, end=20, status=RunStatus.FAILED, author=bob,
            params={"model": "RF-large", "lr": "0.1", "depth": "10", "note": "50 percent", "path": "axb",
                    "sym": "x[1]", "size": "large"},
            metrics={"acc": 0.8, "loss": math.inf}, tags={"team": "nlp", "stage": "prod"},
        ),
        # The latest acc is NaN: stored as NULL, it matches nothing and sorts with the missing.
        "gamma": make_run(
            train, "gamma", minutes=3, status=RunStatus.RUNNING,
            params={"model": "svm", "lr": "fast", "depth": "3.0", "note": "half", "sym": "x?",
                    "size": "large", "path": "c:\\"},
            metrics={"acc": [0.7, math.nan], "loss": 0.5}, tags={"team": "Vision"},
        ),
        "delta": make_run(train, "delta", minutes=4, end=20, status=RunStatus.FINISHED, author=alice,
                          params={"model": "rf"}),
        "eps": make_run(
            tune, "eps", minutes=5, end=30, status=RunStatus.KILLED, author=bob,
            params={"model": "gb", "lr": "1e-3", "depth": " 7 ", "path": "a_bc", "size": "medium"},
            metrics={"acc": 0.9, "loss": -math.inf}, tags={"team": "vision", "stage": "dev"},
        ),
    }
    elsewhere = ExperimentFactory(project=ProjectFactory(), name="train")
    make_run(elsewhere, "elsewhere", minutes=1, end=10, status=RunStatus.FINISHED, author=alice,
             params={"model": "rf", "depth": "3"}, metrics={"acc": 0.9}, tags={"team": "vision"})
    return made


def search(project, **kwargs):
    rows, token = runs_search_rows(project=project, max_results=1000, **kwargs)
    assert token is None
    return rows


def matching(project, filter_string) -> set[str]:
    return {row["name"] for row in search(project, filter_string=filter_string)}


FILTERS = [
    # metrics: NaN and a missing metric match no comparison, != included
    ("metrics.acc = 0.9", {"alpha", "eps"}),
    ("metrics.acc != 0.9", {"beta"}),
    ("metrics.acc > 0.8", {"alpha", "eps"}),
    ("metrics.acc >= 0.8", {"alpha", "beta", "eps"}),
    ("metrics.acc < 0.9", {"beta"}),
    ("metrics.acc <= 0.9", {"alpha", "beta", "eps"}),
    ("metrics.loss > 1e308", {"beta"}),
    ("metrics.loss < -1e308", {"eps"}),
    ("metrics.loss != 0.25", {"beta", "gamma", "eps"}),
    ("metrics.missing != 1", set()),
    # params as text
    ("params.model = 'rf'", {"alpha", "delta"}),
    ("params.model != 'rf'", {"beta", "gamma", "eps"}),
    ("params.model IN ('rf', 'gb')", {"alpha", "delta", "eps"}),
    ("params.model NOT IN ('rf', 'gb')", {"beta", "gamma"}),
    ("params.model LIKE 'rf%'", {"alpha", "delta"}),
    ("params.model LIKE 'RF%'", {"beta"}),
    ("params.model ILIKE 'rf%'", {"alpha", "beta", "delta"}),
    ("params.model LIKE '_f'", {"alpha", "delta"}),
    ("params.lr != '0.1'", {"alpha", "gamma", "eps"}),
    ("params.depth = '3'", {"alpha"}),
    ("params.missing = 'x'", set()),
    ("params.missing != 'x'", set()),
    ("params.missing NOT IN ('x')", set()),
    # params as numbers: a value that is not a number never matches
    ("params.depth = 3", {"alpha", "gamma"}),
    ("params.depth != 3", {"beta", "eps"}),
    ("params.depth > 3", {"beta", "eps"}),
    ("params.depth >= 3", {"alpha", "beta", "gamma", "eps"}),
    ("params.depth < 7", {"alpha", "gamma"}),
    ("params.depth <= 7", {"alpha", "gamma", "eps"}),
    ("params.depth IN (3, 10)", {"alpha", "beta", "gamma"}),
    ("params.depth NOT IN (3, 10)", {"eps"}),
    ("params.depth > '5'", {"beta", "eps"}),
    ("params.lr < 0.05", {"alpha", "eps"}),
    ("params.lr != 0.1", {"alpha", "eps"}),
    ("params.lr >= 0", {"alpha", "beta", "eps"}),
    ("params.missing > 0", set()),
    # tags
    ("tags.team = 'vision'", {"alpha", "eps"}),
    ("tags.team != 'vision'", {"beta", "gamma"}),
    ("tags.team IN ('nlp', 'Vision')", {"beta", "gamma"}),
    ("tags.team NOT IN ('nlp')", {"alpha", "gamma", "eps"}),
    ("tags.team LIKE 'V%'", {"gamma"}),
    ("tags.team ILIKE 'v%'", {"alpha", "gamma", "eps"}),
    ("tags.stage != 'prod'", {"eps"}),
    ("tags.stage NOT IN ('dev')", {"alpha", "beta"}),
    # attributes
    ("attributes.status = 'FINISHED'", {"alpha", "delta"}),
    ("attributes.status != 'FINISHED'", {"beta", "gamma", "eps"}),
    ("attributes.status IN ('FAILED', 'KILLED')", {"beta", "eps"}),
    ("attributes.status NOT IN ('FAILED', 'KILLED')", {"alpha", "gamma", "delta"}),
    ("attributes.status LIKE 'F%'", {"alpha", "beta", "delta"}),
    ("attributes.status LIKE 'f%'", set()),
    ("attributes.status ILIKE 'f%'", {"alpha", "beta", "delta"}),
    ("attributes.run_name = 'gamma'", {"gamma"}),
    ("attributes.name LIKE '%ta'", {"beta", "delta"}),
    ("attributes.author = 'alice'", {"alpha", "delta"}),
    ("attributes.author != 'alice'", {"beta", "eps"}),
    ("attributes.author NOT IN ('bob')", {"alpha", "delta"}),
    ("attributes.author ILIKE 'B%'", {"beta", "eps"}),
    ("attributes.experiment = 'tune'", {"eps"}),
    ("attributes.experiment != 'tune'", {"alpha", "beta", "gamma", "delta"}),
    (f"attributes.start_time = {ms(3)}", {"gamma"}),
    (f"attributes.start_time != {ms(3)}", {"alpha", "beta", "delta", "eps"}),
    (f"attributes.start_time > {ms(3)}", {"delta", "eps"}),
    (f"attributes.start_time >= {ms(3)}", {"gamma", "delta", "eps"}),
    (f"attributes.start_time < {ms(3)}", {"alpha", "beta"}),
    (f"attributes.start_time <= {ms(3)}", {"alpha", "beta", "gamma"}),
    (f"attributes.end_time = {ms(20)}", {"beta", "delta"}),
    (f"attributes.end_time != {ms(20)}", {"alpha", "eps"}),
    (f"attributes.end_time > {ms(20)}", {"eps"}),
    (f"attributes.end_time <= {ms(20)}", {"alpha", "beta", "delta"}),
    # OR and parentheses
    ("(params.model = 'rf' or tags.team = 'nlp') and metrics.acc > 0", {"alpha", "beta"}),
    ("params.model = 'svm' or params.depth > 5 and tags.stage = 'dev'", {"gamma", "eps"}),
    # LIKE and ILIKE escaping: \% and \_ are literal, and so are GLOB's * ? [ on SQLite
    (r"params.note LIKE '50\%%'", {"alpha"}),
    (r"params.note LIKE '50%'", {"alpha", "beta"}),
    (r"params.note ILIKE '50\% OFF'", {"alpha"}),
    (r"params.path LIKE 'a\_b%'", {"alpha", "eps"}),
    (r"params.path LIKE 'a_b%'", {"alpha", "beta", "eps"}),
    (r"params.path ILIKE 'A\_B%'", {"alpha", "eps"}),
    (r"params.path LIKE '%\\\\c'", {"alpha"}),
    (r"params.sym LIKE 'x*%'", {"alpha"}),
    (r"params.sym LIKE 'x[%'", {"beta"}),
    (r"params.sym LIKE 'x?'", {"gamma"}),
    (r"params.sym LIKE 'x_'", {"gamma"}),
    (r"params.sym ILIKE 'X*Y'", {"alpha"}),
    (r"params.sym ILIKE 'X[1]'", {"beta"}),
    # A final backslash that escapes nothing stands for itself.
    (r"params.path LIKE '%:\\'", {"gamma"}),
    (r"params.path LIKE 'c:\\'", {"gamma"}),
    (r"params.path ILIKE 'C:\\'", {"gamma"}),
    (r"params.path LIKE 'c:\\\\'", {"gamma"}),
    (r"params.path LIKE 'a\\'", set()),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("filter_string", "expected"), FILTERS, ids=[f for f, _ in FILTERS])
def test_filter_matches_the_same_runs(project, runs, filter_string, expected):
    assert matching(project, filter_string) == expected


@pytest.mark.django_db
def test_run_id_comparisons(project, runs):
    alpha, beta = str(runs["alpha"].pk), str(runs["beta"].pk)
    assert matching(project, f"attributes.run_id = '{alpha}'") == {"alpha"}
    assert matching(project, f"attributes.run_id != '{alpha}'") == {"beta", "gamma", "delta", "eps"}
    assert matching(project, f"attributes.id IN ('{alpha}', '{beta}')") == {"alpha", "beta"}
    assert matching(project, f"attributes.run_id NOT IN ('{alpha}', '{beta}')") == {"gamma", "delta", "eps"}


def by_id(runs, *names):
    """Runs with equal sort values, in the order the search breaks the tie: by run id."""
    return sorted(names, key=lambda name: runs[name].pk.hex)


ORDERS = [
    ([], lambda r: ["eps", "delta", "gamma", "beta", "alpha"]),
    (["attributes.start_time ASC"], lambda r: ["alpha", "beta", "gamma", "delta", "eps"]),
    (["metrics.acc DESC"], lambda r: [*by_id(r, "alpha", "eps"), "beta", *by_id(r, "gamma", "delta")]),
    (["metrics.acc ASC"], lambda r: ["beta", *by_id(r, "alpha", "eps"), *by_id(r, "gamma", "delta")]),
    (["metrics.loss"], lambda r: ["eps", "alpha", "gamma", "beta", "delta"]),
    (["metrics.loss DESC"], lambda r: ["beta", "gamma", "alpha", "eps", "delta"]),
    (["params.size"], lambda r: [*by_id(r, "beta", "gamma"), "eps", "alpha", "delta"]),
    (["params.size DESC"], lambda r: ["alpha", "eps", *by_id(r, "beta", "gamma"), "delta"]),
    (["tags.stage", "metrics.acc"], lambda r: ["eps", "beta", "alpha", *by_id(r, "gamma", "delta")]),
    (["tags.stage DESC", "metrics.acc DESC"],
     lambda r: ["alpha", "beta", "eps", *by_id(r, "gamma", "delta")]),
    (["attributes.end_time"], lambda r: ["alpha", *by_id(r, "beta", "delta"), "eps", "gamma"]),
    (["attributes.end_time DESC"], lambda r: ["eps", *by_id(r, "beta", "delta"), "alpha", "gamma"]),
    (["attributes.author DESC", "attributes.name"], lambda r: ["beta", "eps", "alpha", "delta", "gamma"]),
    (["attributes.status", "attributes.run_name DESC"],
     lambda r: ["beta", "delta", "alpha", "eps", "gamma"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("order_by", "expected"), ORDERS, ids=[" ".join(o) or "default" for o, _ in ORDERS])
def test_order_puts_ties_by_id_and_missing_values_last(project, runs, order_by, expected):
    assert [row["name"] for row in search(project, order_by=order_by)] == expected(runs)


def walk(project, page_size: int, **kwargs) -> tuple[list[str], int]:
    seen, token, pages = [], None, 0
    while True:
        rows, token = runs_search_rows(project=project, max_results=page_size, page_token=token, **kwargs)
        assert len(rows) <= page_size
        seen += [row["name"] for row in rows]
        pages += 1
        if token is None:
            return seen, pages
        assert pages <= 10


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", [1, 2, 3])
@pytest.mark.parametrize(("order_by", "expected"), ORDERS, ids=[" ".join(o) or "default" for o, _ in ORDERS])
def test_pages_walk_the_same_order_across_ties_and_missing_values(project, runs, order_by, expected,
                                                                  page_size):
    seen, pages = walk(project, page_size, order_by=order_by)
    assert seen == expected(runs)
    assert pages == math.ceil(len(seen) / page_size)


@pytest.mark.django_db
def test_pages_of_a_filtered_search_on_its_sort_key(project, runs):
    # The condition reads the joined sort row, so that key can no longer be NULL.
    seen, _ = walk(project, 1, filter_string="metrics.acc >= 0.8", order_by=["metrics.acc DESC"])
    assert seen == [*by_id(runs, "alpha", "eps"), "beta"]
    seen, _ = walk(project, 2, filter_string="params.size != 'small'", order_by=["params.size"])
    assert seen == [*by_id(runs, "beta", "gamma"), "eps"]


@pytest.mark.django_db
def test_a_page_token_only_continues_its_own_search(project, runs):
    _, token = runs_search_rows(project=project, max_results=2, order_by=["metrics.acc DESC"])
    with pytest.raises(ValidationError) as error:
        runs_search_rows(project=project, max_results=2, order_by=["metrics.acc ASC"], page_token=token)
    assert "different search" in error.value.message_dict["page_token"][0]


@pytest.mark.django_db
def test_rows_carry_the_same_details(project, runs):
    rows = {row["name"]: row for row in search(project)}
    assert rows["beta"]["details"].params == {
        "model": "RF-large", "lr": "0.1", "depth": "10", "note": "50 percent", "path": "axb", "sym": "x[1]",
        "size": "large",
    }
    assert rows["beta"]["details"].metrics == {"acc": (0.8, 0, 1000), "loss": (math.inf, 0, 1000)}
    assert rows["eps"]["details"].metrics["loss"] == (-math.inf, 0, 1000)
    assert rows["gamma"]["details"].metrics == {"acc": (None, 1, 1001), "loss": (0.5, 0, 1000)}
    assert rows["alpha"]["details"].tags == {"team": "vision", "stage": "prod"}
    assert rows["delta"]["details"].metrics == {} and rows["delta"]["details"].tags == {}
    assert rows["alpha"]["author_name"] == "alice" and rows["gamma"]["author_name"] is None
    assert rows["eps"]["experiment_name"] == "tune"


@pytest.mark.django_db
def test_the_backend_is_the_one_for_the_database_in_use(project, runs, django_assert_num_queries):
    expected = {"postgresql": PostgreSQLBackend, "sqlite": SQLiteBackend}[connection.vendor]
    assert type(search_backend()) is expected
    # PostgreSQL reads the details with the page; SQLite in three more queries. Both then read
    # the page's experiment and author names (two small queries, not a join before the limit).
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 6):
        search(project)


@pytest.mark.django_db
def test_runs_built_from_rows_match_the_stored_runs(project, runs, django_assert_num_queries):
    rows = search(project)
    with django_assert_num_queries(2):  # the page's experiments and authors, once each
        built = runs_from_rows(rows, project=project)
        authors = [run.author.username if run.author else None for run in built]
    fields = [field.attname for field in Run._meta.concrete_fields]
    for run, row in zip(built, rows, strict=True):
        stored = Run.objects.get(pk=run.pk)
        assert [getattr(run, name) for name in fields] == [getattr(stored, name) for name in fields]
        assert run.details == row["details"] and run.experiment.name == row["experiment_name"]
    assert authors == [row["author_name"] for row in rows]


def test_rows_without_names_skip_their_two_reads(project, runs, django_assert_num_queries):
    named = search(project)
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 4):
        bare = search(project, with_names=False)
    assert all("experiment_name" not in row and "author_name" not in row for row in bare)
    strip = {"experiment_name", "author_name"}
    assert bare == [{k: v for k, v in row.items() if k not in strip} for row in named]
