"""Autolog: fit logs params, score, timing and the skops model; searches log candidates as child runs."""

from __future__ import annotations

import csv
import io

import pytest
import skops.io
import steward
import steward.sklearn
from scipy.stats import loguniform
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from experiments.models import Run

pytestmark = pytest.mark.live


@pytest.fixture
def autolog(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    steward.sklearn.autolog(experiment="autolog")
    yield
    steward.sklearn.autolog(disable=True)


def test_fit_inside_a_run_logs_params_metrics_and_model(autolog, tmp_path):
    X, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=200))
    with steward.start_run(experiment="autolog", capture=False) as run:
        model.fit(X, y)
    with steward.Client() as client:
        stored = client.get_run(run.id)
        assert stored.params["logisticregression__C"] == "0.5"
        assert stored.params["logisticregression__max_iter"] == "200"
        assert stored.params["memory"] == "None"  # one canonical text for None, as everywhere
        assert stored.metrics["training_score"] == pytest.approx(model.score(X, y))
        assert stored.metrics["system/training_time_s"] > 0  # a timing is about the machine
        assert stored.tags["estimator_name"] == "Pipeline"
        assert stored.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
        path = client.download_artifact(run.id, "model/model.skops", tmp_path)
    loaded = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    assert (loaded.predict(X) == model.predict(X)).all()


def test_tags_name_the_public_import_path(autolog):
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    tags = dict(Run.objects.get(experiment__name="autolog").tags.values_list("key", "value"))
    assert tags["estimator_class"] == "sklearn.linear_model.LogisticRegression"  # not ..._logistic
    assert model.n_iter_ is not None


def test_runs_of_their_own_are_named_so_they_tell_apart(autolog):
    X, y = load_iris(return_X_y=True)
    LogisticRegression(C=0.5, max_iter=300).fit(X, y)
    LogisticRegression(max_iter=300, solver="newton-cg").fit(X, y)
    LogisticRegression().fit(X[:, :2], y)
    LogisticRegression().fit(X[:, :3], y)
    names = dict(Run.objects.filter(experiment__name="autolog").values_list("name", "id"))
    assert "LogisticRegression C=0.5 max_iter=300" in names
    assert "LogisticRegression max_iter=300 solver=newton-cg" in names
    defaults = [(name, run_id) for name, run_id in names.items() if name.startswith("LogisticRegression ")
                and "=" not in name]
    assert len(defaults) == 2  # two fits with every default: told apart by their short ids
    for name, run_id in defaults:
        assert name == f"LogisticRegression {str(run_id)[:8]}"


def test_grid_search_logs_best_params_cv_results_and_a_child_run_per_candidate(autolog, tmp_path):
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1.0]}, cv=2)
    search.fit(X, y)
    parent = Run.objects.get(experiment__name="autolog", parent__isnull=True)
    assert parent.status == "FINISHED" and parent.name == "GridSearchCV LogisticRegression cv=2"
    params = dict(parent.params.values_list("key", "value"))
    assert params["best_C"] == str(search.best_params_["C"])
    assert params["estimator__max_iter"] == "300"
    metrics = dict(parent.latest_metrics.values_list("key", "value"))
    assert metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert "training_score" in metrics

    children = Run.objects.filter(parent=parent)
    assert children.count() == 3  # one per candidate; the 7 inner fits made no runs of their own
    assert Run.objects.filter(experiment__name="autolog").count() == 4
    for child in children:
        c = float(child.params.get(key="C").value)
        i = [p["C"] for p in search.cv_results_["params"]].index(c)
        assert child.name == f"LogisticRegression C={c}" and child.status == "FINISHED"
        child_metrics = dict(child.latest_metrics.values_list("key", "value"))
        assert child_metrics["mean_test_score"] == pytest.approx(search.cv_results_["mean_test_score"][i])
        assert child_metrics["rank_test_score"] == search.cv_results_["rank_test_score"][i]
        assert "system/mean_fit_time" in child_metrics and "mean_fit_time" not in child_metrics

    with steward.Client() as client:
        table = client.download_artifact(str(parent.pk), "cv_results.csv", tmp_path).read_text()
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [float(r["param_C"]) for r in rows] == [0.01, 0.1, 1.0]
    scores = list(search.cv_results_["mean_test_score"])
    assert [float(r["mean_test_score"]) for r in rows] == pytest.approx(scores)


def test_randomized_search_keeps_the_best_candidates_through_steward_autolog(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    steward.autolog(experiment="random", max_tuning_runs=2)
    try:
        X, y = load_iris(return_X_y=True)
        search = RandomizedSearchCV(LogisticRegression(max_iter=500), {"C": loguniform(1e-3, 10)},
                                    n_iter=4, cv=2, random_state=0)
        search.fit(X, y)
    finally:
        steward.autolog(disable=True)
    parent = Run.objects.get(experiment__name="random", parent__isnull=True)
    children = Run.objects.filter(parent=parent)
    assert children.count() == 2
    ranks = sorted(int(c.latest_metrics.get(key="rank_test_score").value) for c in children)
    assert ranks == sorted(search.cv_results_["rank_test_score"])[:2]
    assert float(parent.params.get(key="best_C").value) == pytest.approx(search.best_params_["C"])


def test_autolog_disable_restores_fit(autolog):
    steward.sklearn.autolog(disable=True)
    X, y = load_iris(return_X_y=True)
    LogisticRegression(max_iter=300).fit(X, y)
    assert not Run.objects.filter(experiment__name="autolog").exists()
    assert not getattr(LogisticRegression.fit, "__steward_autolog__", False)
    assert steward.active_run() is None
