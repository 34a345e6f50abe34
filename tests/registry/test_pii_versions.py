"""A model version fed PII columns carries the flag: its files and fill values are for roles that see PII."""

import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from tests.registry.conftest import register, store_model

EMAILS = [f"zq{i:03d}.secret@corp.example" for i in range(8)]


def email_model():
    frame = pd.DataFrame({"email": EMAILS * 5, "visits": list(range(40))})
    labels = [i % 2 for i in range(40)]
    text = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
    model = make_pipeline(make_column_transformer((text, ["email"]), remainder="passthrough"),
                          LogisticRegression(max_iter=500))
    return model.fit(frame, labels), frame


def test_registering_with_pii_inputs_locks_the_model_file_and_its_example(project, run, editor, viewer):
    model, frame = email_model()
    store_model(run, model, example=frame)
    version = register(project=project, run=run, user=editor.user, name="mailer", pii_columns=["email"])
    assert version.holds_pii
    locked = set(run.artifacts.filter(pii=True).values_list("path", flat=True))
    assert locked == {"model/model.skops", "model/input_example.json"}
    for path in locked:
        url = f"/api/v1/runs/{run.pk}/artifacts/{path}"
        assert viewer.get(url).status_code == 403 and editor.get(url).status_code == 200

    body = viewer.get(f"/api/v1/projects/{project.slug}/models/mailer/versions/1/")
    assert body.status_code == 200 and body.json()["pii"] is True
    assert "corp.example" not in body.content.decode()
    listed = viewer.get(f"/api/v1/projects/{project.slug}/models/mailer/versions/").content.decode()
    assert "corp.example" not in listed
    # The text imputer's fill value, a real email, reaches editors only.
    assert version.runtime == "onnx", version.runtime_reason
    signature = editor.get(f"/api/v1/projects/{project.slug}/models/mailer/versions/1/").json()["signature"]
    assert signature["onnx_fills"]["email"].endswith("corp.example")


def test_a_version_without_pii_inputs_leaves_its_files_open(project, run, editor, viewer):
    model, frame = email_model()
    store_model(run, model, example=frame)
    version = register(project=project, run=run, user=editor.user, name="mailer")
    assert not version.holds_pii and not run.artifacts.filter(pii=True).exists()
    assert viewer.get(f"/api/v1/runs/{run.pk}/artifacts/model/model.skops").status_code == 200
    assert viewer.get(f"/api/v1/projects/{project.slug}/models/mailer/versions/1/").json()["pii"] is False
