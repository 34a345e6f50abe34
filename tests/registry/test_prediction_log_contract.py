"""One contract for both prediction-log writers: what is written is what is read back, the same on
PostgreSQL and on SQLite. The suite runs on whichever database is configured; CI runs it on each."""

import datetime as dt
import math
import uuid

import numpy as np
import pytest
from django.db import connection

from experiments.models import Artifact
from registry import prediction_log
from registry.models import ModelVersion, PredictionLog, RegisteredModel
from registry.prediction_log_writer import Entry, prediction_log_writer
from tests.factories import RunFactory

WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 891_011, tzinfo=dt.UTC)


def version_create(project, pk: int | None = None) -> ModelVersion:
    run = RunFactory(experiment__project=project)
    artifact = Artifact.objects.create(run=run, path="model/model.skops", storage_name="x/model", size=10,
                                       sha256="0" * 64)
    model, _ = RegisteredModel.objects.get_or_create(project=project, name="scorer")
    number = model.versions.count() + 1
    extra = {"pk": pk} if pk is not None else {}
    return ModelVersion.objects.create(
        model=model, version=number, run=run, artifact=artifact, artifact_path="model/model.skops",
        storage_name=artifact.storage_name, sha256=artifact.sha256, size=10, model_format="skops", **extra)


@pytest.fixture
def version(project):
    return version_create(project)


def matrix_entry(version_id: int, rows: int, seed: int) -> Entry:
    rng = np.random.default_rng(seed)
    proba = rng.random((rows, 2))
    return Entry(version_id=version_id, request_id=uuid.uuid4().hex,
                 created_at=WHEN + dt.timedelta(seconds=seed), rows=rows, names=["income", "age"],
                 matrix=rng.random((rows, 2)) * 100,
                 predictions=rng.integers(0, 2, rows), probabilities=proba / proba.sum(axis=1, keepdims=True))


def expected_rows(entry: Entry) -> list[dict]:
    """What each row of an entry reads back as, worked out in Python from the entry itself."""
    out = []
    for i in range(entry.rows):
        if entry.matrix is not None:
            inputs = {name: float(entry.matrix[i, j]) for j, name in enumerate(entry.names)}
        else:
            inputs = {name: entry.columns[name][i] for name in entry.names}
        prediction = entry.predictions[i]
        probabilities = None if entry.probabilities is None else [float(p) for p in entry.probabilities[i]]
        if hasattr(prediction, "item"):  # a numpy number
            prediction = prediction.item()
        out.append({"inputs": inputs, "prediction": prediction, "probabilities": probabilities})
    return out


def read_back(version) -> list[tuple]:
    return [(record.request_id.hex, record.rows, record.created_at,
             [record.row_get(i) for i in range(record.rows)])
            for record in PredictionLog.objects.filter(model_version_id=version.pk).order_by("id")]


def written(entries: list[Entry]) -> list[tuple]:
    return [(e.request_id, e.rows, e.created_at, expected_rows(e)) for e in entries]


@pytest.mark.django_db
def test_the_writer_is_the_configured_databases_and_chosen_once():
    writer = prediction_log_writer()
    assert writer.vendor == connection.vendor
    assert prediction_log_writer() is writer


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [0, 1, 7, 300])
def test_rows_written_equal_rows_read_for_every_batch_size(version, batch):
    entries = [matrix_entry(version.pk, rows=1 + i % 5, seed=i) for i in range(batch)]
    assert prediction_log_writer().entries_write(entries) == sum(e.rows for e in entries)
    assert read_back(version) == written(entries)


@pytest.mark.django_db
def test_nulls_and_json_values_round_trip_the_same_on_both_databases(version):
    text = 'quote " backslash \\ tab \t newline \n unicode é 漢字 🙂 comma, semicolon;'
    columns = Entry(
        version_id=version.pk, request_id=uuid.uuid4().hex, created_at=WHEN, rows=4,
        names=["city", "score", "tags", "big"],
        columns={"city": [text, None, "", "\\N"],
                 "score": [1.5, math.nan, math.inf, None],
                 "tags": [["a", 1], {"k": [True, None]}, [], False],
                 "big": [2**70, -(2**63), 0, 12]},
        predictions=["yes", None, "no", "yes"], probabilities=None)
    numbers = Entry(
        version_id=version.pk, request_id=uuid.uuid4().hex, created_at=WHEN, rows=2, names=["x"],
        matrix=np.array([[np.nan], [-np.inf]]), predictions=np.array([0.25, np.nan]),
        probabilities=np.array([[np.nan, 1.0], [0.5, 0.5]]))
    assert prediction_log_writer().entries_write([columns, numbers]) == 6
    (_, _, when, first), (_, _, _, second) = read_back(version)
    assert when == WHEN
    assert [row["inputs"] for row in first] == [
        {"city": text, "score": 1.5, "tags": ["a", 1], "big": 2**70},
        {"city": None, "score": None, "tags": {"k": [True, None]}, "big": -(2**63)},
        {"city": "", "score": None, "tags": [], "big": 0},
        {"city": "\\N", "score": None, "tags": False, "big": 12},
    ]
    assert [row["prediction"] for row in first] == ["yes", None, "no", "yes"]
    assert [row["probabilities"] for row in first] == [None] * 4
    # NaN and infinities have no JSON form: they are stored as null.
    assert second == [{"inputs": {"x": None}, "prediction": 0.25, "probabilities": [None, 1.0]},
                      {"inputs": {"x": None}, "prediction": None, "probabilities": [0.5, 0.5]}]


@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_is_written_whole_or_not_at_all_and_waits_for_the_next_flush(project, settings):
    settings.PREDICTION_LOG_BACKGROUND = False
    prediction_log._drain()
    version = version_create(project)
    missing = version.pk + 1_000
    # The second entry names a version that does not exist yet: the database refuses the batch.
    early = [matrix_entry(version.pk, 2, seed=1), matrix_entry(missing, 3, seed=2)]
    for entry in early:
        prediction_log.prediction_log_enqueue(entry)
    try:
        assert prediction_log.prediction_log_flush() == 0
        assert not PredictionLog.objects.exists()  # not even the entry that was fine
        assert prediction_log.prediction_log_stats()["queued_rows"] == 5
        late = matrix_entry(version.pk, 4, seed=3)
        prediction_log.prediction_log_enqueue(late)
        other = version_create(project, pk=missing)
        assert prediction_log.prediction_log_flush() == 9
        assert prediction_log.prediction_log_stats()["queued_rows"] == 0
        # Each entry once, the refused batch ahead of what queued after it.
        assert read_back(version) == written([early[0], late])
        assert read_back(other) == written([early[1]])
        assert list(PredictionLog.objects.order_by("id").values_list("rows", flat=True)) == [2, 3, 4]
    finally:
        prediction_log._drain()
