"""Every output of a dataset or a model that shows column values masks PII columns for viewers.

One rule decides (accounts.selectors.pii_hidden); this collects what a viewer can
read after the whole loop has run on a dataset whose PII email column carries a
distinctive marker: the dataset's preview, profile, validation report and rules,
the model's signature, example rows and "try it" form, its explanation rows,
fairness groups and card, and a monitor's report whose features include the PII
column (its owner turned on logging PII, so the histograms hold its values).
An editor reading the same outputs meets the marker, so the data is really there.
"""

import pytest

from accounts.models import Role
from monitoring import services as monitoring_services
from registry import prediction_log
from registry import services as registry_services
from registry.models import RegisteredModel
from tests.datasets import test_pii_viewers as viewers
from tests.datasets.test_pii_validation import browser_for
from tests.datasets.test_pii_viewers import body_of, leaks

# The fixtures of the viewer tests: the PII world, eager tasks, and serving's state reset.
pii_world, eager, serving_state = viewers.pii_world, viewers.eager, viewers.serving_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitored(project, editor, member_client, pii_world):
    """The PII-trained model behind an alias, watched by a monitor that compares the email column."""
    owner = member_client(Role.OWNER)
    version = pii_world["model_version"]
    registry_services.alias_set(model=version.model, alias="live", version=version, user=editor.user)
    assert owner.patch(f"/api/v1/projects/{project.slug}/models/churn/", {"log_pii": True},
                       format="json").status_code == 200
    response = editor.post(f"/api/v1/projects/{project.slug}/monitors/", {
        "model": "churn", "alias": "live", "reference_dataset_version": pii_world["dataset_version"],
        "features": ["email", "income", "age", "dept"]}, format="json")
    assert response.status_code == 201, response.content
    monitor = response.json()
    frame = pii_world["frame"]
    records = frame[["email", "income", "age", "dept"]].to_dict("records")
    for start in range(0, len(records), 60):
        answer = editor.post(f"/api/v1/serve/{project.slug}/churn/live/predict",
                             {"records": records[start:start + 60]}, format="json")
        assert answer.status_code == 200, answer.content
    prediction_log.prediction_log_flush()
    job = editor.post(f"/api/v1/monitors/{monitor['id']}/run/").json()
    monitoring_services.drift_report_compute(job_id=job["id"])
    report_id = editor.get(f"/api/v1/jobs/{job['id']}/").json()["result"]["report_id"]
    return {"monitor": monitor["id"], "report": report_id}


def outputs(project, world, monitored, api, browser) -> dict[str, object]:
    """The answers that carry column values, API JSON and pages alike, keyed by URL."""
    dv, slug = world["dataset_version"], project.slug
    model = f"/api/v1/projects/{slug}/models/churn/"
    version = model + "versions/1/"
    page = f"/p/{slug}/models/churn/v/1/"
    api_urls = [
        f"/api/v1/dataset-versions/{dv}/", f"/api/v1/dataset-versions/{dv}/preview/?rows=100",
        f"/api/v1/projects/{slug}/datasets/people/", f"/api/v1/projects/{slug}/datasets/people/rules/",
        model + "versions/", version, version + "explanation/", version + "explanation/?include=beeswarm",
        version + "fairness/", version + "model-card/",
        f"/api/v1/monitors/{monitored['monitor']}/", f"/api/v1/monitor-reports/{monitored['report']}/",
    ]
    pages = [f"/datasets/v/{dv}/", f"/p/{slug}/datasets/people/", page, page + "card/", page + "card.md",
             page + "card.html", f"/monitors/{monitored['monitor']}/",
             f"/monitors/{monitored['monitor']}/?report={monitored['report']}"]
    answers = {url: api.get(url) for url in api_urls}
    answers |= {url: browser.get(url) for url in pages}
    return answers


def test_no_output_shows_a_viewer_a_pii_value(project, viewer, editor, pii_world, monitored):
    answers = outputs(project, pii_world, monitored, viewer, browser_for(viewer))
    assert {url: r.status_code for url, r in answers.items() if r.status_code != 200} == {}
    assert [url for url, r in answers.items() if leaks(body_of(r))] == []

    # What the viewer reads is the real thing, with the PII column's place kept.
    version = f"/api/v1/projects/{project.slug}/models/churn/versions/1/"
    explanation = answers[version + "explanation/"].json()
    assert explanation["status"] == "succeeded" and explanation["rows"], explanation["status"]
    assert explanation["pii_masked"] == ["email"]
    assert all(row["input"]["email"] is None for row in explanation["rows"])
    report = answers[f"/api/v1/monitor-reports/{monitored['report']}/"].json()
    assert "email" in {f["feature"] for f in report["features"]}
    assert report["histograms"]["email"] == {"hidden": True}
    assert report["histograms"]["dept"]["labels"]

    # An editor's answers hold the values: the masking above is what kept them out.
    seen = outputs(project, pii_world, monitored, editor, browser_for(editor))
    shown = {url for url, r in seen.items() if leaks(body_of(r))}
    dataset_version = f"/api/v1/dataset-versions/{pii_world['dataset_version']}/"
    for url in (f"/api/v1/monitor-reports/{monitored['report']}/", f"/monitors/{monitored['monitor']}/",
                version + "explanation/", dataset_version + "preview/?rows=100", dataset_version):
        assert url in shown, url


def test_the_monitor_page_says_why_a_histogram_is_missing(project, viewer, monitored):
    assert RegisteredModel.objects.get(name="churn").log_pii is True
    page = browser_for(viewer).get(f"/monitors/{monitored['monitor']}/").content.decode()
    assert '"email": {"hidden": true}' in page
