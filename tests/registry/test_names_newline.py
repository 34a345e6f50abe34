"""A name that ends in a newline is not the name it looks like: refused everywhere, served nowhere.

Patterns anchored with "$" also match before a final newline, so "champion\\n"
once passed the alias check, slipped past the protection of "champion" and
was served under a name that reads as "champion" on every page.
"""

import pytest
from django.core import checks

from experiments.models import LatestMetric, Param, Tag
from registry.models import ModelAlias, RegisteredModel
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready_version(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X.head(20))
    return register(project=project, run=run, user=editor.user)


def models_url(project, suffix=""):
    return f"/api/v1/projects/{project.slug}/models/credit-scorer/{suffix}"


@pytest.mark.parametrize("alias", ["champion%0A", "challenger%0A", "challenger%0D%0A"])
def test_an_alias_ending_in_a_newline_is_a_400_naming_the_field(project, editor, ready_version, alias):
    response = editor.put(models_url(project, f"aliases/{alias}/"), {"version": 1}, format="json")
    assert response.status_code == 400, response.content
    assert "alias" in response.json()["error"]["fields"]
    assert not ModelAlias.objects.exists()
    assert editor.delete(models_url(project, f"aliases/{alias}/")).status_code == 400


def test_an_alias_stored_with_a_newline_before_the_fix_serves_nothing(project, editor, ready_version,
                                                                      iris_logreg):
    # As a row written before names were checked to their end would be.
    ModelAlias.objects.create(model=ready_version.model, name="champion\n", version=ready_version)
    _, X = iris_logreg
    record = X.iloc[0].to_dict()
    served = editor.post(f"/api/v1/serve/{project.slug}/credit-scorer/champion%0A/predict",
                         {"records": [record]}, format="json")
    assert served.status_code == 404, served.content
    assert "predictions" not in served.json()
    assert editor.get(models_url(project, "versions/champion%0A/")).status_code == 404
    # The version itself still serves by number, and a well-formed alias still serves.
    assert editor.post(f"/api/v1/serve/{project.slug}/credit-scorer/1/predict", {"records": [record]},
                       format="json").status_code == 200
    assert editor.put(models_url(project, "aliases/challenger/"), {"version": 1},
                      format="json").status_code == 200
    assert editor.post(f"/api/v1/serve/{project.slug}/credit-scorer/challenger/predict",
                       {"records": [record]}, format="json").status_code == 200


def test_a_model_name_ending_in_a_newline_is_a_400(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X.head(20))
    # (JSON fields are trimmed by the API; a name in the URL is taken as it is.)
    response = editor.post(f"/api/v1/projects/{project.slug}/models/scorer%0A/versions/",
                           {"run_id": str(run.pk)}, format="json")
    assert response.status_code == 400, response.content
    assert "name" in response.json()["error"]["fields"]
    assert not RegisteredModel.objects.exists()


def test_a_project_slug_ending_in_a_newline_is_refused(editor):
    from django.core.exceptions import ValidationError

    from accounts.models import slug_validator
    from accounts.services import project_create

    with pytest.raises(ValidationError):
        slug_validator("credit\n")
    with pytest.raises(ValidationError) as refused:
        project_create(user=editor.user, slug="credit\n")
    assert "slug" in refused.value.message_dict


@pytest.mark.parametrize("kind", ["metrics", "params", "tags"])
def test_keys_ending_in_a_newline_are_a_400(editor, run, kind):
    entry = {"key": "loss\n", "value": 1.0} if kind == "metrics" else {"key": "loss\n", "value": "1"}
    response = editor.post(f"/api/v1/runs/{run.pk}/batch/", {kind: [entry]}, format="json")
    assert response.status_code == 400
    assert f"{kind}[0].key" in response.json()["error"]["fields"]
    assert not LatestMetric.objects.exists() and not Param.objects.exists()
    assert not Tag.objects.filter(key="loss\n").exists()


def test_a_search_key_ending_in_a_newline_is_refused(project, editor, run):
    response = editor.post(f"/api/v1/projects/{project.slug}/runs/search/",
                           {"filter": "metrics.`loss\n` > 0"}, format="json")
    assert response.status_code == 400, response.content


def _newline_warnings():
    found = checks.run_checks(databases=["default"], tags=[checks.Tags.database])
    return {w.id: w.msg for w in found if w.id.startswith("registry.")}


def test_the_database_check_lists_rows_stored_with_a_trailing_newline(project, run, ready_version):
    assert _newline_warnings() == {}
    RegisteredModel.objects.create(project=project, name="scorer\n")
    ModelAlias.objects.create(model=ready_version.model, name="champion\n", version=ready_version)
    LatestMetric.objects.create(run=run, key="loss\n", value=1.0, step=0, timestamp=0)
    Param.objects.create(run=run, key="lr\n", value="0.1")
    Tag.objects.create(run=run, key="team\n", value="risk")

    warnings = _newline_warnings()
    assert set(warnings) == {"registry.W002", "registry.W003", "registry.W004", "registry.W005",
                             "registry.W006"}
    assert "'scorer\\n'" in warnings["registry.W002"]
    assert "alias 'champion\\n'" in warnings["registry.W003"]
    assert f"metric 'loss\\n' (run {run.pk})" in warnings["registry.W004"]
    assert "'lr\\n'" in warnings["registry.W005"] and "'team\\n'" in warnings["registry.W006"]


def test_migrate_reports_them_to_the_operator(project, run):
    import io

    from django.core.management import call_command

    Param.objects.create(run=run, key="lr\n", value="0.1")
    err = io.StringIO()
    call_command("migrate", "--database", "default", skip_checks=False, stdout=io.StringIO(), stderr=err)
    assert "registry.W005" in err.getvalue() and "'lr\\n'" in err.getvalue()
