"""The loaded-model cache stays correct when many threads serve more models than it holds."""

import random
import sys
import threading

import pytest

from registry import serving
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


def test_more_models_than_the_cache_holds_are_served_from_many_threads(project, run, editor, iris_logreg,
                                                                       settings):
    settings.SERVING_CACHE_MODELS = 2
    serving.predictor_cache_clear()
    logreg, X = iris_logreg
    versions = []
    for i in range(5):
        store_model(run, logreg, folder=f"m{i}", example=X)
        versions.append(register(project=project, run=run, user=editor.user, path=f"m{i}", name=f"iris-{i}"))
    assert all(v.status == "ready" for v in versions)
    expected = logreg.predict(X.iloc[:3]).tolist()
    rows = X.iloc[:3].to_dict("records")
    failures: list[BaseException] = []

    def serve(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(100):
                version = rng.choice(versions)
                predictor = serving.predictor_get(version)
                parsed = serving.sig.request_parse({"records": rows}, predictor.columns, max_rows=10,
                                                   numbers=predictor.numbers)
                labels, _ = predictor.predict(parsed)
                assert list(labels) == expected
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=serve, args=(seed,)) for seed in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up at once
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    assert len(serving._cache) <= 2
