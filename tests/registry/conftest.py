import io
import json
import warnings

import numpy as np
import pytest
import skops.io as sio
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import Role
from experiments import artifacts
from registry import prediction_log, registration, serving
from registry.models import ModelVersion
from tests.factories import ExperimentFactory, RunFactory, UserFactory


@pytest.fixture(autouse=True)
def _artifacts_of_its_own(artifact_root):
    """Every test here stores artifacts in a folder of its own (tests/conftest.py)."""
    return artifact_root


@pytest.fixture(autouse=True)
def serving_state(settings):
    """Tests flush the prediction log themselves, and start with no models loaded."""
    settings.PREDICTION_LOG_BACKGROUND = False
    serving.predictor_cache_clear()
    prediction_log._drain()
    yield
    serving.predictor_cache_clear()
    prediction_log._drain()


@pytest.fixture
def run(project):
    return RunFactory(experiment=ExperimentFactory(project=project))


@pytest.fixture
def owner(member_client):
    return member_client(Role.OWNER)


@pytest.fixture
def admin(db):
    """An instance administrator (staff) with no project role: the only one who may trust a pickle."""
    user = UserFactory(is_staff=True)
    _, raw = account_services.api_token_create(user=user, name="admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.user = user
    return client


@pytest.fixture
def pickles_on(settings):
    """An installation that turned pickle/joblib loading on (ALLOW_PICKLE_MODELS)."""
    settings.ALLOW_PICKLE_MODELS = True


# Fitted once per test session: training is the slow part of these tests.


@pytest.fixture(scope="session")
def cancer_data():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def forest(cancer_data):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer_data
    return make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0)).fit(X, y)


@pytest.fixture(scope="session")
def iris_logreg():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    return LogisticRegression(max_iter=1000).fit(X, names[y]), X


@pytest.fixture(scope="session")
def diabetes_ridge():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return Ridge().fit(X, y), X


@pytest.fixture(scope="session")
def hist_gb(cancer_data):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    X, y = cancer_data
    # OpenMP threads fighting over a shared machine's cores make this 10x slower.
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        return HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)


def example_json(frame, rows: int = 1000) -> bytes:
    head = frame.head(rows)
    data = [[None if isinstance(v, float) and np.isnan(v) else v for v in row]
            for row in head.astype(object).values.tolist()]
    return json.dumps({"columns": list(map(str, head.columns)),
                       "dtypes": [str(t) for t in head.dtypes], "data": data}).encode()


def upload(run, path: str, data: bytes):
    return artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data))


def store_model(run, estimator, *, folder: str = "model", example=None, file_name="model.skops",
                data: bytes | None = None):
    """Store a model the way run.log_model does: the file plus an input example."""
    upload(run, f"{folder}/{file_name}", data if data is not None else sio.dumps(estimator))
    if example is not None:
        upload(run, f"{folder}/input_example.json", example_json(example))


def register(*, project, run, user, name="credit-scorer", path="model", check=True, **kwargs) -> ModelVersion:
    version = registration.model_version_create(
        project=project, model_name=name, run=run, artifact_path=path, user=user, **kwargs
    )
    if check:
        registration.model_version_check(job_id=version.check_job_id)
        version.refresh_from_db()
    return version
