"""A database that is away for a while loses no prediction-log rows that fit in the queue."""

import pytest
from django.db import connection

from registry import prediction_log
from registry.models import PredictionLog
from tests.registry.conftest import register, store_model

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


@pytest.fixture
def served(project, run, editor, forest, cancer_data):
    X, _ = cancer_data
    store_model(run, forest, example=X.sample(100, random_state=2))
    return register(project=project, run=run, user=editor.user)


def predict(editor, project, X, rows: int):
    records = [{k: float(v) for k, v in row.items()} for row in X.iloc[:rows].to_dict("records")]
    response = editor.post(f"/api/v1/serve/{project.slug}/credit-scorer/1/predict", {"records": records},
                           format="json")
    assert response.status_code == 200, response.content


class DatabaseAway:
    """This process's connection points at a port nobody listens on, as when the server is down."""

    def __enter__(self):
        self.port = connection.settings_dict["PORT"]
        connection.close()
        connection.settings_dict["PORT"] = "1"

    def __exit__(self, *exc):
        connection.close()
        connection.settings_dict["PORT"] = self.port


def test_rows_wait_while_the_database_is_away_then_every_row_arrives(project, editor, served, cancer_data,
                                                                     client):
    X, _ = cancer_data
    dropped = prediction_log.prediction_log_stats()["dropped_rows"]
    for rows in (3, 5):
        predict(editor, project, X, rows)
    with DatabaseAway():
        assert prediction_log.prediction_log_flush() == 0
        assert prediction_log.prediction_log_flush() == 0  # still away: the rows still wait
    assert client.get("/healthz").json()["prediction_log"] == {"queued_rows": 8, "dropped_rows": dropped}
    predict(editor, project, X, 2)
    assert prediction_log.prediction_log_flush() == 10
    assert sorted(PredictionLog.objects.values_list("rows", flat=True)) == [2, 3, 5]
    assert client.get("/healthz").json()["prediction_log"] == {"queued_rows": 0, "dropped_rows": dropped}


def test_past_the_cap_the_oldest_rows_are_dropped_and_counted(project, editor, served, cancer_data, settings,
                                                              client):
    settings.PREDICTION_LOG_MAX_QUEUED_ROWS = 6
    X, _ = cancer_data
    dropped = prediction_log.prediction_log_stats()["dropped_rows"]
    predict(editor, project, X, 4)
    with DatabaseAway():
        assert prediction_log.prediction_log_flush() == 0
    predict(editor, project, X, 3)  # 7 rows queued: the oldest request (4 rows) goes
    assert client.get("/healthz").json()["prediction_log"] == {"queued_rows": 3, "dropped_rows": dropped + 4}
    assert prediction_log.prediction_log_flush() == 3
    assert list(PredictionLog.objects.values_list("rows", flat=True)) == [3]
