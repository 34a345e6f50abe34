import hashlib
import io
import os

import numpy as np
import pandas as pd
import pytest

from accounts.models import Role
from core.models import Job, JobStatus
from datasets.models import DatasetVersion


@pytest.fixture
def eager(django_capture_on_commit_callbacks, settings):
    """``with eager():`` runs the jobs queued inside the block in this process, when it ends."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return lambda: django_capture_on_commit_callbacks(execute=True)


def credit_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """A small made-up credit table: numbers, categories, a sensitive column and a binary target."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, rows).round(2)
    age = rng.integers(18, 80, rows)
    sex = rng.choice(["F", "M"], rows)
    housing = rng.choice(["rent", "own", "other"], rows, p=[0.5, 0.4, 0.1])
    score = (income / 20_000) + (age / 40) + (housing == "own") + rng.normal(0, 0.7, rows)
    default = (score < np.median(score)).astype(int)
    df = pd.DataFrame({"customer_id": np.arange(1, rows + 1), "income": income, "age": age,
                       "sex": sex, "housing": housing, "default": default})
    df.loc[rng.choice(rows, 10, replace=False), "income"] = np.nan
    return df


def csv_bytes(df: pd.DataFrame, **kwargs) -> bytes:
    return df.to_csv(index=False, **kwargs).encode()


def upload(client, slug, name, data: bytes, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.generic("POST", f"/api/v1/projects/{slug}/datasets/{name}/versions/?{query}", data,
                          content_type="application/octet-stream", CONTENT_LENGTH=str(len(data)))


def stored_files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


# --- upload and schema -----------------------------------------------------------------------


def test_upload_records_schema_counts_and_hash(editor, project):
    data = csv_bytes(credit_frame())
    response = upload(editor, project.slug, "credit", data, filename="credit.csv")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 1 and body["created"] is True
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    assert (body["row_count"], body["column_count"]) == (400, 6)
    cols = {c["name"]: c for c in body["columns"]}
    assert cols["income"]["dtype"] == "float64" and cols["income"]["nullable"] is True
    assert cols["income"]["null_count"] == 10
    assert cols["age"]["dtype"] == "int64" and cols["age"]["nullable"] is False
    assert cols["sex"]["dtype"] == "string"
    assert all(c["role"] == "feature" and c["pii"] is False for c in body["columns"])


def test_identical_content_returns_the_existing_version(editor, project, artifact_root):
    data = csv_bytes(credit_frame())
    first = upload(editor, project.slug, "credit", data).json()
    files = stored_files(artifact_root)
    again = upload(editor, project.slug, "credit", data)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"] and again.json()["created"] is False
    assert DatasetVersion.objects.count() == 1
    assert stored_files(artifact_root) == files  # the duplicate blob was not kept
    changed = upload(editor, project.slug, "credit", csv_bytes(credit_frame(seed=1)))
    assert changed.status_code == 201 and changed.json()["version"] == 2


def test_multipart_upload_and_parquet(editor, project):
    buf = io.BytesIO()
    credit_frame().to_parquet(buf)
    response = editor.post(f"/api/v1/projects/{project.slug}/datasets/",
                           {"name": "credit-pq", "file": io.BytesIO(buf.getvalue())}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["format"] == "parquet" and body["row_count"] == 400
    assert {c["name"]: c["dtype"] for c in body["columns"]}["income"] == "float64"


def test_semicolon_csv_is_sniffed_and_latin1_read_when_told(editor, project):
    df = pd.DataFrame({"city": ["Zürich", "Genève", "Bern"], "n": [1, 2, 3]})
    response = upload(editor, project.slug, "cities", df.to_csv(index=False, sep=";").encode())
    assert response.status_code == 201
    assert response.json()["read_options"]["delimiter"] == ";"
    latin = upload(editor, project.slug, "cities-latin", df.to_csv(index=False).encode("latin-1"),
                   encoding="latin-1")
    assert latin.status_code == 201
    preview = editor.get(f"/api/v1/dataset-versions/{latin.json()['id']}/preview/").json()
    assert preview["rows"][1] == ["Genève", 2]


@pytest.mark.parametrize(
    ("data", "params", "field", "words"),
    [
        (b"", {}, "file", "empty"),
        (b"a,b,c\n", {}, "file", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, "file", "binary"),
        (b"a,b\n1,2\n", {"file_format": "parquet"}, "file", "not a Parquet"),
        (b"a;b;c\n1;2;3\n4;5;6\n", {"delimiter": ","}, "delimiter", "';'"),
        ("name,city\nA,Genève\n".encode("latin-1"), {}, "encoding", "utf-8"),
        (b"a,b\n1,2\n3,4,5\n", {}, "file", "different numbers of columns"),
        (b"a,a\n1,2\n", {}, "file", "unique"),
        (b"a,b\n1,2\n", {"file_format": "xlsx"}, "format", "csv"),
    ],
)
def test_bad_files_are_refused_with_the_reason_and_nothing_is_stored(
    editor, project, artifact_root, data, params, field, words
):
    response = upload(editor, project.slug, "bad", data, **params)
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"], error
    assert words.lower() in error["fields"][field].lower()
    assert DatasetVersion.objects.count() == 0
    assert stored_files(artifact_root) == []


def test_raw_upload_without_length_is_refused(editor, project):
    response = editor.generic("POST", f"/api/v1/projects/{project.slug}/datasets/x/versions/", b"a\n1\n",
                              content_type="application/octet-stream", CONTENT_LENGTH="")
    assert response.status_code == 411


def test_viewers_cannot_upload_and_outsiders_cannot_see(member_client, outsider, editor, project):
    viewer = member_client(Role.VIEWER)
    assert upload(viewer, project.slug, "credit", b"a,b\n1,2\n").status_code == 403
    version = upload(editor, project.slug, "credit", b"a,b\n1,2\n3,4\n").json()
    assert outsider.get(f"/api/v1/dataset-versions/{version['id']}/").status_code == 404
    assert outsider.get(f"/api/v1/projects/{project.slug}/datasets/credit/").status_code == 404
    assert viewer.get(f"/api/v1/dataset-versions/{version['id']}/").status_code == 200


# --- roles, PII and preview ------------------------------------------------------------------


def test_editor_sets_roles_and_pii_which_hides_the_column_from_viewers(member_client, editor, project, eager):
    version = upload(editor, project.slug, "credit", csv_bytes(credit_frame())).json()
    url = f"/api/v1/dataset-versions/{version['id']}/"
    viewer = member_client(Role.VIEWER)
    change = {"columns": {"default": {"role": "target"}, "sex": {"role": "sensitive"},
                          "customer_id": {"role": "id", "pii": True}}}
    assert viewer.patch(url + "columns/", change, format="json").status_code == 403
    response = editor.patch(url + "columns/", change, format="json")
    assert response.status_code == 200
    roles = {c["name"]: (c["role"], c["pii"]) for c in response.json()["columns"]}
    assert roles["default"] == ("target", False) and roles["customer_id"] == ("id", True)

    viewer_rows = viewer.get(url + "preview/?rows=3").json()
    assert viewer_rows["hidden_columns"] == ["customer_id"]
    assert [r[0] for r in viewer_rows["rows"]] == ["***"] * 3
    editor_rows = editor.get(url + "preview/?rows=3").json()
    assert [r[0] for r in editor_rows["rows"]] == [1, 2, 3]
    assert viewer.get(url + "download/").status_code == 403
    assert editor.get(url + "download/").status_code == 200

    bad = editor.patch(url + "columns/", {"columns": {"nope": {"role": "target"}}}, format="json")
    assert bad.status_code == 400 and "columns.nope" in error_of(bad)["fields"]
    bad = editor.patch(url + "columns/", {"columns": {"age": {"role": "boss"}}}, format="json")
    assert bad.status_code == 400 and "columns.age.role" in error_of(bad)["fields"]

    # A new version keeps the roles and PII flags of the columns it shares.
    v2 = upload(editor, project.slug, "credit", csv_bytes(credit_frame(seed=3))).json()
    assert {c["name"]: (c["role"], c["pii"]) for c in v2["columns"]} == roles


# --- profile job -----------------------------------------------------------------------------


def test_profile_job_computes_statistics_labels_and_groups(editor, member_client, project, eager):
    df = credit_frame()
    with eager():
        version = upload(editor, project.slug, "credit", csv_bytes(df)).json()
    url = f"/api/v1/dataset-versions/{version['id']}/"
    editor.patch(url + "columns/", {"columns": {"default": {"role": "target"}, "sex": {"role": "sensitive"},
                                                "income": {"pii": True}}}, format="json")
    with eager():
        job = editor.post(url + "profile/")
    assert job.status_code == 202
    assert Job.objects.get(pk=job.json()["id"]).status == JobStatus.SUCCEEDED
    # The job that ran at upload succeeded too.
    assert Job.objects.get(pk=version["profile_job"]["id"]).status == JobStatus.SUCCEEDED

    body = editor.get(url).json()
    profile = body["profile"]
    cols = {c["name"]: c for c in profile["columns"]}
    income = cols["income"]
    assert income["nulls"] == 10
    assert income["min"] == pytest.approx(df.income.min())
    assert income["max"] == pytest.approx(df.income.max())
    assert income["mean"] == pytest.approx(df.income.mean())
    assert income["std"] == pytest.approx(df.income.std())
    assert income["quantiles"]["0.5"] == pytest.approx(df.income.median())
    assert sum(income["histogram"]["counts"]) == 390
    assert cols["housing"]["distinct"] == 3
    assert cols["housing"]["top_values"][0] == ["rent", int((df.housing == "rent").sum())]
    labels = dict(profile["labels"]["counts"])
    assert labels == {"0": int((df.default == 0).sum()), "1": int((df.default == 1).sum())}
    group = profile["sensitive_groups"][0]
    assert group["column"] == "sex"
    assert dict(group["counts"]) == df.sex.value_counts().to_dict()
    assert group["by_label"]["F"]["1"] == int(((df.sex == "F") & (df.default == 1)).sum())

    # A viewer sees the PII column's counts, never its values.
    viewer_income = {c["name"]: c for c in member_client(Role.VIEWER).get(url).json()["profile"]["columns"]}
    assert viewer_income["income"]["hidden"] is True
    assert "min" not in viewer_income["income"] and "histogram" not in viewer_income["income"]


# --- validation rules ------------------------------------------------------------------------


def test_validation_rules_run_on_each_new_version_and_name_failing_rows(editor, project, eager):
    df = credit_frame(rows=50)
    upload(editor, project.slug, "credit", csv_bytes(df))
    rules_url = f"/api/v1/projects/{project.slug}/datasets/credit/rules/"
    for rule in [
        {"kind": "not_null", "column": "income"},
        {"kind": "range", "column": "age", "config": {"min": 18, "max": 65}},
        {"kind": "allowed_values", "column": "housing", "config": {"values": ["rent", "own"]}},
        {"kind": "unique", "column": "customer_id"},
        {"kind": "schema_unchanged"},
    ]:
        assert editor.post(rules_url, rule, format="json").status_code == 201
    bad = editor.post(rules_url, {"kind": "range", "column": "age", "config": {"min": "a"}}, format="json")
    assert bad.status_code == 400 and "config.min" in error_of(bad)["fields"]
    bad = editor.post(rules_url, {"kind": "not_null", "column": "nope"}, format="json")
    assert bad.status_code == 400 and "column" in error_of(bad)["fields"]

    df2 = df.copy()
    df2["extra"] = 1
    df2.loc[4, "customer_id"] = df2.loc[5, "customer_id"]
    with eager():
        version = upload(editor, project.slug, "credit", csv_bytes(df2)).json()
    report = editor.get(f"/api/v1/dataset-versions/{version['id']}/").json()["validation"]
    assert report["passed"] is False
    by_kind = {r["kind"]: r for r in report["rules"]}
    nulls = df2.index[df2.income.isna()] + 1
    assert by_kind["not_null"]["failed_rows"] == list(nulls)
    assert by_kind["not_null"]["failed_columns"] == ["income"]
    old = df2.index[df2.age > 65] + 1
    assert by_kind["range"]["failed_rows"] == list(old) and by_kind["range"]["failed_count"] == len(old)
    assert by_kind["allowed_values"]["failed_rows"] == list(df2.index[df2.housing == "other"] + 1)
    assert by_kind["unique"]["failed_rows"] == [5, 6]
    assert by_kind["schema_unchanged"]["passed"] is False
    assert by_kind["schema_unchanged"]["failed_columns"] == ["extra"]
