"""steward.sklearn.autolog(): fit logs params, training time and score, and the model in skops format."""

from __future__ import annotations

import pytest
import skops.io
import steward
import steward.sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
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
        assert stored.metrics["training_score"] == pytest.approx(model.score(X, y))
        assert stored.metrics["training_time_s"] > 0
        assert stored.tags["estimator_name"] == "Pipeline"
        path = client.download_artifact(run.id, "model/model.skops", tmp_path)
    loaded = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    assert (loaded.predict(X) == model.predict(X)).all()


def test_fit_without_a_run_gets_its_own_and_nested_fits_are_not_logged(autolog):
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2)
    search.fit(X, y)
    runs = Run.objects.filter(experiment__name="autolog")
    assert runs.count() == 1  # the grid's four inner fits did not make runs of their own
    run = runs.get()
    assert run.status == "FINISHED" and run.name == "GridSearchCV"
    assert run.params.get(key="estimator__max_iter").value == "300"
    assert run.latest_metrics.filter(key="training_score").exists()
    assert steward.active_run() is None


def test_autolog_disable_restores_fit(autolog):
    steward.sklearn.autolog(disable=True)
    X, y = load_iris(return_X_y=True)
    LogisticRegression(max_iter=300).fit(X, y)
    assert not Run.objects.filter(experiment__name="autolog").exists()
    assert not getattr(LogisticRegression.fit, "__steward_autolog__", False)
