"""Model cards: generated from lineage, metrics, audit and explanation; written sections editable."""

import pytest

from accounts.models import Role
from datasets.models import Dataset, DatasetVersion, RunDataset
from experiments.models import Param
from governance.cards import PII_MASK, model_card_context
from governance.models import AuditEvent, Explanation, FairnessReport, ModelCard
from tests.governance.conftest import browser_for

pytestmark = pytest.mark.django_db

SHA = "f" * 64


@pytest.fixture
def documented(project, run, ready_version):
    """The ready version with lineage, a fairness report and an explanation."""
    run.git_commit, run.seed = "0123abcd" * 5, 1234
    run.save(update_fields=["git_commit", "seed"])
    Param.objects.create(run=run, key="max_iter", value="1000")
    dataset = Dataset.objects.create(project=project, name="applicants")
    data = DatasetVersion.objects.create(
        dataset=dataset, version=3, sha256=SHA, storage_name="x", format="csv", size=10, row_count=150,
        column_count=2, columns=[{"name": "gender", "dtype": "string", "pii": True},
                                 {"name": "region", "dtype": "string", "pii": False}])
    RunDataset.objects.create(run=run, dataset_version=data, direction="input", role="train")
    ready_version.training_dataset_version = data
    ready_version.metrics = {"accuracy": 0.97}
    ready_version.save(update_fields=["training_dataset_version", "metrics"])
    FairnessReport.objects.create(
        version=ready_version, status="succeeded", task="classification",
        sensitive_features=["gender", "region"],
        groups=[{"feature": "gender", "group": "female", "count": 80, "selection_rate": 0.4},
                {"feature": "region", "group": "north", "count": 70, "selection_rate": 0.5},
                {"feature": "gender & region", "group": "female, north", "count": 40,
                 "selection_rate": 0.45}],
        summary={"region": {"demographic_parity_difference": 0.1, "demographic_parity_ratio": 0.8,
                            "equalized_odds_difference": 0.05, "equalized_odds_ratio": 0.9}})
    Explanation.objects.create(
        version=ready_version, status="succeeded", explainer="linear", output="log_odds", base_value=0.1,
        global_importance={"petal length (cm)": 1.5, "sepal width (cm)": 0.2}, additivity_ok=True,
        row_count=100)
    return ready_version


def card_url(project, suffix=""):
    return f"/p/{project.slug}/models/credit-scorer/v/1/card{suffix}"


def api_url(project):
    return f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/1/model-card/"


def test_the_card_is_generated_from_lineage_metrics_audit_and_explanation(documented):
    card = model_card_context(documented, show_pii=True)
    assert card["lineage"]["git_commit"] == "0123abcd" * 5 and card["lineage"]["seed"] == 1234
    assert ["max_iter", "1000"] in [list(p) for p in card["lineage"]["params"]]
    assert card["lineage"]["datasets"] == [{"name": "applicants", "version": 3, "sha256": SHA, "rows": 150,
                                            "direction": "input", "role": "train"}]
    assert card["metrics"] == [("accuracy", 0.97)]
    assert card["artifact"]["sha256"] == documented.sha256
    assert card["fairness"]["summary"]["region"]["demographic_parity_ratio"] == 0.8
    assert card["explanation"]["global_importance"][0] == ("petal length (cm)", 1.5)
    assert [s["key"] for s in card["sections"]] == [
        "intended_use", "out_of_scope_use", "limitations", "ethical_considerations", "caveats"]


def test_fairness_groups_of_pii_columns_are_masked_for_viewers(documented):
    groups = {g["feature"]: g["group"] for g in model_card_context(documented)["fairness"]["groups"]}
    assert groups == {"gender": PII_MASK, "region": "north", "gender & region": PII_MASK}
    project = documented.model.project
    viewer_page = browser_for(project, Role.VIEWER).get(card_url(project, "/"))
    assert b"female" not in viewer_page.content
    editor_page = browser_for(project, Role.EDITOR).get(card_url(project, "/"))
    assert b"female" in editor_page.content


def test_a_version_without_analyses_still_has_a_card(project, ready_version):
    card = model_card_context(ready_version)
    assert card["fairness"] is None and card["explanation"] is None
    page = browser_for(project, Role.VIEWER).get(card_url(project, "/"))
    assert page.status_code == 200 and b"No fairness audit for this version yet" in page.content


def test_editors_edit_sections_viewers_read_and_the_edit_is_audited(project, documented):
    editor = browser_for(project, Role.EDITOR)
    assert b'id="model-card-link"' in editor.get(f"/p/{project.slug}/models/credit-scorer/v/1/").content
    response = editor.post(card_url(project, "/edit/"), {
        "intended_use": "Pre-screening **loan** applications.", "limitations": "Trained on 2024 data only.",
    }, follow=True)
    assert "Model card saved" in response.content.decode()
    assert "<strong>loan</strong>" in response.content.decode()
    card = ModelCard.objects.get(version=documented)
    assert card.sections["limitations"] == "Trained on 2024 data only." and card.updated_by == editor.user
    event = AuditEvent.objects.get(action="model_card.updated")
    assert event.after["sections"]["intended_use"] == "Pre-screening **loan** applications."
    assert event.before["sections"]["intended_use"] == ""
    viewer = browser_for(project, Role.VIEWER)
    page = viewer.get(card_url(project, "/"))
    assert b"Trained on 2024 data only." in page.content and b'id="card-edit"' not in page.content
    assert viewer.post(card_url(project, "/edit/"), {"caveats": "x"}).status_code == 403
    assert "caveats" not in ModelCard.objects.get(version=documented).sections
    assert browser_for(project, None).get(card_url(project, "/")).status_code == 404


def test_the_api_reads_and_patches_sections_naming_bad_fields(project, documented, editor, viewer, outsider):
    body = viewer.get(api_url(project)).json()
    assert body["version"] == 1 and body["lineage"]["seed"] == 1234
    assert viewer.patch(api_url(project), {"sections": {"caveats": "x"}}, format="json").status_code == 403
    unknown = editor.patch(api_url(project), {"sections": {"purpose": "x"}}, format="json")
    assert unknown.status_code == 400 and "sections" in unknown.json()["error"]["fields"]
    too_long = editor.patch(api_url(project), {"sections": {"caveats": "x" * 20001}}, format="json")
    assert too_long.status_code == 400 and "sections.caveats" in too_long.json()["error"]["fields"]
    assert not ModelCard.objects.exists()
    saved = editor.patch(api_url(project), {"sections": {"caveats": "Recalibrate yearly."}}, format="json")
    assert saved.status_code == 200
    assert {s["key"]: s["text"] for s in saved.json()["sections"]}["caveats"] == "Recalibrate yearly."
    assert outsider.get(api_url(project)).status_code == 404


def test_the_card_downloads_as_markdown_and_html(project, documented):
    editor = browser_for(project, Role.EDITOR)
    editor.post(card_url(project, "/edit/"),
                {"ethical_considerations": "Gender is **never** a feature.<script>alert(1)</script>"})
    markdown = editor.get(card_url(project, ".md"))
    assert markdown["Content-Disposition"] == 'attachment; filename="model-card-credit-scorer-v1.md"'
    text = markdown.content.decode()
    assert text.startswith("# Model card: credit-scorer v1")
    assert f"sha256 `{SHA}`" in text and "`0123abcd" in text and "Seed: 1234" in text
    assert "## Ethical considerations\n\nGender is **never** a feature." in text
    html = editor.get(card_url(project, ".html"))
    assert html["Content-Disposition"].endswith('.html"') and html["Content-Type"].startswith("text/html")
    page = html.content.decode()
    assert page.startswith("<!doctype html>") and "petal length (cm)" in page
    assert "<strong>never</strong>" in page
    assert "<script>alert" not in page  # Markdown's raw HTML is sanitised in the HTML export
