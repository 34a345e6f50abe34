"""Validation reports and rules never quote a PII column's values to those who may not see them."""

import json

import numpy as np
import pandas as pd
import pytest
from django.test import Client

from datasets.models import DatasetVersion
from tests.datasets import test_datasets as ds
from tests.datasets.test_datasets import csv_bytes, upload

eager = ds.eager  # the fixture, shared with the dataset tests

PII_MARK = "corp.example"  # every email below ends with it; nothing else in the data has it


def people_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Customers with an email-like PII column of distinctive values, a department and a churn target."""
    rng = np.random.default_rng(seed)
    emails = np.array([f"zq{i:03d}.secret@{PII_MARK}" for i in range(60)])
    income = rng.normal(50_000, 15_000, rows).round(2)
    age = rng.integers(18, 80, rows)
    dept = rng.choice(["sales", "ops", "tech"], rows)
    churn = ((income / 20_000 + age / 40 + rng.normal(0, 0.5, rows)) < 4).astype(int)
    return pd.DataFrame({"email": rng.choice(emails, rows), "income": income, "age": age,
                         "dept": dept, "churn": churn})


def browser_for(client) -> Client:
    browser = Client()
    browser.force_login(client.user)
    return browser


@pytest.fixture
def people(editor, project, eager):
    """A dataset whose email column is PII, with an allowed_values rule on email and one on dept."""
    with eager():
        first = upload(editor, project.slug, "people", csv_bytes(people_frame())).json()
    editor.patch(f"/api/v1/dataset-versions/{first['id']}/columns/",
                 {"columns": {"email": {"pii": True}, "churn": {"role": "target"}}}, format="json")
    rules = f"/api/v1/projects/{project.slug}/datasets/people/rules/"
    for rule in ({"kind": "allowed_values", "column": "email", "config": {"values": [f"boss@{PII_MARK}"]}},
                 {"kind": "allowed_values", "column": "dept", "config": {"values": ["sales", "ops"]}}):
        assert editor.post(rules, rule, format="json").status_code == 201
    return first


def test_a_pii_column_fails_allowed_values_with_a_count_and_no_value_in_the_stored_report(
    editor, project, people, eager
):
    with eager():
        second = upload(editor, project.slug, "people", csv_bytes(people_frame(seed=1))).json()
    stored = DatasetVersion.objects.get(pk=second["id"]).validation
    by_column = {r["column"]: r for r in stored["rules"]}
    assert by_column["email"]["passed"] is False
    assert by_column["email"]["message"] == f"{by_column['email']['failed_count']} value(s) not allowed"
    # What is stored holds no value of the PII column, only the rule's own config.
    assert "zq0" not in json.dumps(stored)
    # A column that is not PII still names examples of what failed.
    assert by_column["dept"]["message"].endswith("e.g. tech")


def test_a_report_made_before_the_column_was_flagged_shows_viewers_counts_only(
    editor, viewer, project, eager
):
    with eager():
        version = upload(editor, project.slug, "people", csv_bytes(people_frame())).json()
    rules = f"/api/v1/projects/{project.slug}/datasets/people/rules/"
    editor.post(rules, {"kind": "allowed_values", "column": "email", "config": {"values": ["x"]}},
                format="json")
    url = f"/api/v1/dataset-versions/{version['id']}/"
    with eager():
        editor.post(url + "validate/")
    assert "zq0" in json.dumps(DatasetVersion.objects.get(pk=version["id"]).validation)  # not PII yet
    editor.patch(url + "columns/", {"columns": {"email": {"pii": True}}}, format="json")

    seen = viewer.get(url).json()["validation"]["rules"][0]
    assert seen["message"] == f"{seen['failed_count']} value(s) not allowed"
    page = browser_for(viewer).get(f"/datasets/v/{version['id']}/").content.decode()
    assert f"{seen['failed_count']} value(s) not allowed" in page and "zq0" not in page
    # Editors may see PII: they get the report as stored.
    assert "zq0" in editor.get(url).json()["validation"]["rules"][0]["message"]


def test_the_allowed_values_of_a_pii_column_are_counted_not_listed_for_viewers(
    editor, viewer, project, people
):
    for client, listed in ((viewer, False), (editor, True)):
        rules = client.get(f"/api/v1/projects/{project.slug}/datasets/people/rules/").json()["rules"]
        detail = client.get(f"/api/v1/projects/{project.slug}/datasets/people/").json()["rules"]
        page = browser_for(client).get(f"/p/{project.slug}/datasets/people/").content.decode()
        for body in (json.dumps(rules), json.dumps(detail), page):
            assert (PII_MARK in body) is listed
            assert "sales" in body  # the dept rule is not PII
        email_rule = next(r for r in rules if r["column"] == "email")
        if not listed:
            assert email_rule["config"] == {"values_count": 1, "hidden": True}
