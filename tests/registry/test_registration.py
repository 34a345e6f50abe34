import io

import numpy as np
import pytest
import skops.io as sio

from accounts.models import Role
from experiments.artifacts import artifact_storage
from registry import loading, registration
from registry.models import ModelFormat, ModelVersion, Runtime, VersionStatus
from tests.factories import ExperimentFactory, ProjectFactory, RunFactory
from tests.registry.conftest import register, store_model, upload

pytestmark = pytest.mark.django_db


def versions_url(project, name="credit-scorer"):
    return f"/api/v1/projects/{project.slug}/models/{name}/versions/"


def test_registered_forest_is_verified_and_served_by_onnx(project, run, editor, forest, cancer_data):
    X, _ = cancer_data
    store_model(run, forest, example=X.sample(200, random_state=1))

    version = register(project=project, run=run, user=editor.user)

    assert version.version == 1
    assert version.status == VersionStatus.READY
    assert version.runtime == Runtime.ONNX
    assert version.output_kind == "classification"
    assert version.classes == [0, 1]
    assert version.verification["labels_identical"] is True
    assert version.verification["rows"] == 200
    assert version.verification["max_abs_diff"] <= 1e-5
    assert [c["name"] for c in version.columns] == list(X.columns)
    assert {c["dtype"] for c in version.columns} == {"double"}
    assert not any(c["nullable"] for c in version.columns)
    # The ONNX file is stored with its own hash, and what was registered is pinned by sha256.
    assert len(loading.onnx_bytes_load(version)) == version.onnx_size
    assert version.sha256 == run.artifacts.get(path="model/model.skops").sha256


def test_versions_count_up_per_model(project, run, editor, forest, cancer_data):
    store_model(run, forest, example=cancer_data[0])
    first = register(project=project, run=run, user=editor.user, check=False)
    second = register(project=project, run=run, user=editor.user, check=False)
    other = register(project=project, run=run, user=editor.user, name="other", check=False)
    assert (first.version, second.version, other.version) == (1, 2, 1)


def test_regressor_outputs_are_verified_within_tolerance(project, run, editor, diabetes_ridge):
    ridge, X = diabetes_ridge
    store_model(run, ridge, example=X)
    version = register(project=project, run=run, user=editor.user, name="progression")
    assert version.runtime == Runtime.ONNX
    assert version.output_kind == "regression"
    assert version.verification["max_scaled_diff"] <= 1e-5


def test_a_model_onnx_cannot_convert_is_served_by_sklearn_and_says_why(
    project, run, editor, hist_gb, cancer_data
):
    store_model(run, hist_gb, example=cancer_data[0])
    version = register(project=project, run=run, user=editor.user)
    assert version.status == VersionStatus.READY
    assert version.runtime == Runtime.SKLEARN
    assert version.runtime_reason == ("The ONNX converter cannot translate this "
                                      "HistGradientBoostingClassifier model, so scikit-learn serves it.")


def test_without_input_example_the_signature_comes_from_the_model(project, run, editor, forest, cancer_data):
    store_model(run, forest)
    version = register(project=project, run=run, user=editor.user)
    assert version.status == VersionStatus.READY
    assert [c["name"] for c in version.columns] == list(cancer_data[0].columns)
    assert version.runtime == Runtime.SKLEARN
    assert "No held-out rows" in version.runtime_reason


def test_register_through_the_api_starts_pending_then_checks(project, run, editor, forest, cancer_data):
    store_model(run, forest, example=cancer_data[0].head(20))
    response = editor.post(versions_url(project), {"run_id": str(run.pk), "artifact_path": "model"},
                           format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending_checks"
    assert body["version"] == 1
    assert body["model_format"] == "skops"

    registration.model_version_check(job_id=body["check_job_id"])
    detail = editor.get(versions_url(project) + "1/").json()
    assert detail["status"] == "ready"
    assert detail["runtime"] == "onnx"
    model = editor.get(f"/api/v1/projects/{project.slug}/models/credit-scorer/").json()
    assert model["latest_version"] == 1
    assert model["owner"] == editor.user.username


def test_naming_the_model_file_itself_works(project, run, editor, forest, cancer_data):
    store_model(run, forest, example=cancer_data[0].head(20))
    response = editor.post(versions_url(project), {"run_id": str(run.pk),
                                                   "artifact_path": "model/model.skops"}, format="json")
    assert response.status_code == 201
    assert response.json()["artifact_path"] == "model/model.skops"


def test_a_run_of_another_project_is_not_found(project, editor, forest, cancer_data):
    elsewhere = ProjectFactory()
    foreign_run = RunFactory(experiment=ExperimentFactory(project=elsewhere))
    store_model(foreign_run, forest, example=cancer_data[0].head(20))
    # Even a member of both projects cannot register another project's run here.
    from tests.factories import MembershipFactory

    MembershipFactory(project=elsewhere, user=editor.user, role=Role.OWNER)
    response = editor.post(versions_url(project), {"run_id": str(foreign_run.pk)}, format="json")
    assert response.status_code == 404
    assert ModelVersion.objects.count() == 0


@pytest.mark.parametrize("path", ["../other-run/model", "/etc/passwd", "model/../../x", "model/%2e%2e/x",
                                  "C:/model", "model\\..\\x"])
def test_artifact_path_traversal_is_refused(project, run, editor, forest, path):
    store_model(run, forest)
    response = editor.post(versions_url(project), {"run_id": str(run.pk), "artifact_path": path},
                           format="json")
    assert response.status_code == 400
    assert "artifact_path" in response.json()["error"]["fields"]
    assert ModelVersion.objects.count() == 0


def test_a_url_is_not_an_artifact(project, run, editor, forest):
    store_model(run, forest)
    response = editor.post(versions_url(project), {"run_id": str(run.pk),
                                                   "artifact_path": "https://example.com/model.pkl"},
                           format="json")
    assert response.status_code == 400
    assert "artifact_path" in response.json()["error"]["fields"]


def test_no_model_file_at_the_path_is_a_400(project, run, editor):
    upload(run, "model/README.txt", b"hello")
    response = editor.post(versions_url(project), {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 400
    assert "no model file" in response.json()["error"]["fields"]["artifact_path"]


def test_a_fake_skops_file_is_refused(project, run, editor):
    upload(run, "model/model.skops", b"\x80\x04not a zip")
    response = editor.post(versions_url(project), {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 400
    assert "not a skops file" in response.json()["error"]["fields"]["artifact_path"]


def test_a_bad_input_example_is_named(project, run, editor, forest):
    store_model(run, forest)
    upload(run, "model/input_example.json", b'{"columns": ["a"], "dtypes": ["datetime64"], "data": [[1]]}')
    response = editor.post(versions_url(project), {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 400
    assert "input_example.dtypes" in response.json()["error"]["fields"]


def test_roles(project, run, member_client, outsider, forest, cancer_data):
    store_model(run, forest, example=cancer_data[0].head(5))
    viewer = member_client(Role.VIEWER)
    assert viewer.post(versions_url(project), {"run_id": str(run.pk)}, format="json").status_code == 403
    assert outsider.post(versions_url(project), {"run_id": str(run.pk)}, format="json").status_code == 404
    assert outsider.get(versions_url(project)).status_code == 404


def test_a_bad_model_name_is_refused(project, run, editor, forest):
    store_model(run, forest)
    response = editor.post(versions_url(project, "bad name!"), {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_example_columns_that_do_not_match_the_model_fail_the_version(
    project, run, editor, forest, cancer_data
):
    X = cancer_data[0].rename(columns={"mean radius": "radius"})
    store_model(run, forest, example=X.head(10))
    version = register(project=project, run=run, user=editor.user)
    assert version.status == VersionStatus.FAILED
    assert "do not match" in version.status_message


def test_a_file_changed_in_storage_is_never_loaded(project, run, editor, forest, cancer_data):
    store_model(run, forest, example=cancer_data[0].head(10))
    version = register(project=project, run=run, user=editor.user, check=False)
    artifact_storage().delete(version.storage_name)
    artifact_storage().save(version.storage_name, io.BytesIO(b"PK\x03\x04tampered"))
    registration.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    assert version.status == VersionStatus.FAILED
    assert "does not match the sha256" in version.status_message


def test_untrusted_skops_types_are_refused(project, run, editor):
    import os

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    sneaky = make_pipeline(FunctionTransformer(func=os.system))
    sneaky.fit(np.zeros((2, 1)))
    store_model(run, sneaky)
    version = register(project=project, run=run, user=editor.user)
    assert version.model_format == ModelFormat.SKOPS
    assert version.status == VersionStatus.FAILED
    assert "does not trust" in version.status_message


def test_a_tree_with_out_of_range_nodes_is_refused(project, run, editor, iris_logreg):
    # scikit-learn follows tree node indices without bounds checks; a crafted
    # file could make predict() read outside its arrays.
    from sklearn.tree import DecisionTreeClassifier

    _, X = iris_logreg
    tree = DecisionTreeClassifier(random_state=0).fit(X, np.arange(len(X)) % 3)
    state = tree.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**6
    tree.tree_.__setstate__({**state, "nodes": nodes})
    store_model(run, tree, example=X.head(5))
    version = register(project=project, run=run, user=editor.user)
    assert version.status == VersionStatus.FAILED
    assert "malformed decision tree" in version.status_message


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_a_nearest_neighbours_model_registers_and_serves(project, run, editor, iris_logreg, algorithm):
    from sklearn.neighbors import KNeighborsClassifier

    _, X = iris_logreg
    y = np.arange(len(X)) % 3
    knn = KNeighborsClassifier(algorithm=algorithm).fit(X, y)
    store_model(run, knn, example=X.head(20))
    version = register(project=project, run=run, user=editor.user)
    assert version.status == VersionStatus.READY, version.status_message
    assert loading.estimator_load(version).predict(X.head(20)).tolist() == knn.predict(X.head(20)).tolist()


@pytest.mark.parametrize(("part", "broken"), [
    ("sample index", lambda state: (1, _shifted(state[1], 10**6))),
    ("child index", lambda state: (2, _not_leaves(state[2]))),
    ("node range", lambda state: (2, _range_past_end(state[2], len(state[1])))),
])
@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_a_neighbour_tree_with_out_of_range_indices_is_refused(project, run, editor, iris_logreg,
                                                               algorithm, part, broken):
    # Like decision trees, KD and ball trees are walked by compiled code without bounds checks.
    from sklearn.neighbors import KNeighborsClassifier

    _, X = iris_logreg
    knn = KNeighborsClassifier(algorithm=algorithm).fit(X, np.arange(len(X)) % 3)
    state = list(knn._tree.__getstate__())
    index, value = broken(state)
    state[index] = value
    knn._tree.__setstate__(tuple(state))
    store_model(run, knn, example=X.head(5))
    version = register(project=project, run=run, user=editor.user)
    assert version.status == VersionStatus.FAILED, part
    assert "malformed neighbour tree" in version.status_message


def _shifted(idx, value):
    out = idx.copy()
    out[0] = value
    return out


def _not_leaves(nodes):
    out = nodes.copy()
    out["is_leaf"] = 0
    return out


def _range_past_end(nodes, n):
    out = nodes.copy()
    out["idx_end"][-1] = n + 50
    return out


def test_training_and_the_registry_share_one_trusted_type_list():
    # What training may save is exactly what the registry loads: a type outside the
    # list is refused on both sides (numpy.sum passed the old "numpy." prefix training
    # allowed, and the registry refused it).
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from core.model_files import ModelFileRefused, model_dumps, model_loads

    summed = make_pipeline(FunctionTransformer(func=np.sum)).fit(np.ones((3, 1)))
    with pytest.raises(ModelFileRefused, match="numpy.sum"):
        model_dumps(summed)
    with pytest.raises(ModelFileRefused, match="does not trust: numpy.sum"):
        model_loads(sio.dumps(summed))


def test_a_bare_forest_is_verified_with_float32_input(project, run, editor, cancer_data):
    # scikit-learn compares tree thresholds in float32; a double-input export
    # of a bare forest flips some splits, the float32 one does not.
    from sklearn.ensemble import RandomForestClassifier

    X, y = cancer_data
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(X.iloc[:400], y.iloc[:400])
    store_model(run, forest, example=X.iloc[400:])
    version = register(project=project, run=run, user=editor.user)
    assert version.runtime == Runtime.ONNX, version.runtime_reason
    assert version.signature["input_mode"] == "tensor32"
    assert version.verification["max_abs_diff"] <= 1e-5
