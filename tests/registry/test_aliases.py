import pytest
from django.core.exceptions import ValidationError

from accounts.models import Role
from registry import services
from registry.models import AliasEvent, ModelAlias
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    v1 = register(project=project, run=run, user=editor.user)
    v2 = register(project=project, run=run, user=editor.user)
    return v1, v2


def alias_url(project, alias, name="credit-scorer"):
    return f"/api/v1/projects/{project.slug}/models/{name}/aliases/{alias}/"


def predict_url(project, ref, name="credit-scorer"):
    return f"/api/v1/serve/{project.slug}/{name}/{ref}/predict"


IRIS_ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4,
            "petal width (cm)": 0.2}


def test_an_alias_points_to_a_version_and_keeps_its_history(project, editor, two_versions):
    assert editor.put(alias_url(project, "challenger"), {"version": 1}, format="json").status_code == 200
    assert editor.put(alias_url(project, "challenger"), {"version": 2}, format="json").status_code == 200

    body = editor.get(f"/api/v1/projects/{project.slug}/models/credit-scorer/aliases/").json()
    assert body["aliases"] == {"challenger": 2}
    moves = [(e["version"], e["previous_version"], e["actor"]) for e in body["history"]]
    assert moves == [(2, 1, editor.user.username), (1, None, editor.user.username)]
    version = editor.get(f"/api/v1/projects/{project.slug}/models/credit-scorer/versions/challenger/").json()
    assert version["version"] == 2
    assert version["aliases"] == ["challenger"]


def test_a_moved_alias_serves_the_new_version_on_the_next_request(project, editor, two_versions):
    editor.put(alias_url(project, "challenger"), {"version": 1}, format="json")
    first = editor.post(predict_url(project, "challenger"), {"records": [IRIS_ROW]}, format="json")
    assert first.status_code == 200, first.json()
    assert first.json()["model_version"] == 1

    editor.put(alias_url(project, "challenger"), {"version": 2}, format="json")
    second = editor.post(predict_url(project, "challenger"), {"records": [IRIS_ROW]}, format="json")
    assert second.json()["model_version"] == 2


@pytest.mark.parametrize("alias", ["champion", "production"])
def test_a_protected_alias_cannot_be_moved_through_the_api(project, member_client, two_versions, alias):
    owner = member_client(Role.OWNER)
    response = owner.put(alias_url(project, alias), {"version": 1}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "alias_protected"
    assert not ModelAlias.objects.filter(name=alias).exists()
    assert not AliasEvent.objects.filter(alias=alias).exists()


def test_a_protected_alias_cannot_be_moved_or_removed_by_the_service(project, editor, two_versions):
    v1, v2 = two_versions
    model = v1.model
    services.alias_set_protected(model=model, alias="champion", version=v1, approval=_Approval(7))
    with pytest.raises(services.AliasProtected):
        services.alias_set(model=model, alias="champion", version=v2, user=editor.user)
    with pytest.raises(services.AliasProtected):
        services.alias_remove(model=model, alias="champion", user=editor.user)
    assert ModelAlias.objects.get(model=model, name="champion").version == v1


class _Approval:
    """Stands in for the promotion request the governance app will pass."""

    def __init__(self, pk):
        self.pk = pk


def test_the_approval_path_moves_a_protected_alias_and_records_the_approval(project, editor, two_versions):
    v1, v2 = two_versions
    services.alias_set_protected(model=v1.model, alias="champion", version=v2, approval=_Approval(42),
                                 actor=editor.user)
    event = AliasEvent.objects.get(alias="champion")
    assert event.version == v2
    assert event.via == "approval:approval:42"
    response = editor.post(predict_url(project, "champion"), {"records": [IRIS_ROW]}, format="json")
    assert response.json()["model_version"] == 2
    with pytest.raises(ValidationError):
        services.alias_set_protected(model=v1.model, alias="champion", version=v1, approval=None)


def test_protection_is_configurable_by_owners_only(project, member_client, editor, two_versions):
    url = f"/api/v1/projects/{project.slug}/models/credit-scorer/"
    assert editor.patch(url, {"protected_aliases": ["champion"]}, format="json").status_code == 403
    owner = member_client(Role.OWNER)
    response = owner.patch(url, {"protected_aliases": ["champion", "production", "gold"]}, format="json")
    assert response.status_code == 200
    assert response.json()["protected_aliases"] == ["champion", "gold", "production"]
    assert editor.put(alias_url(project, "gold"), {"version": 1}, format="json").status_code == 403
    # Taking protection away is not an owner's call alone: it needs an approved request.
    refused = owner.patch(url, {"protected_aliases": ["champion", "gold"]}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "approval_required"
    assert "protection change request" in refused.json()["error"]["message"]
    assert editor.put(alias_url(project, "production"), {"version": 1}, format="json").status_code == 403
    kinds = set(AliasEvent.objects.values_list("alias", "kind"))
    assert ("gold", "protected") in kinds
    assert ("production", "unprotected") not in kinds


@pytest.mark.parametrize("alias", ["has space", "x" * 65, "ünïcode", "12", "a.b"])
def test_alias_names_are_checked(project, editor, two_versions, alias):
    response = editor.put(alias_url(project, alias), {"version": 1}, format="json")
    assert response.status_code in (400, 404)
    assert not ModelAlias.objects.exists()


def test_an_alias_to_an_unknown_version_is_a_400(project, editor, two_versions):
    response = editor.put(alias_url(project, "challenger"), {"version": 9}, format="json")
    assert response.status_code == 400
    assert "version" in response.json()["error"]["fields"]


def test_an_alias_needs_a_ready_version(project, run, editor, forest):
    store_model(run, forest, folder="other")
    pending = register(project=project, run=run, user=editor.user, path="other", check=False)
    response = editor.put(alias_url(project, "challenger"), {"version": pending.version}, format="json")
    assert response.status_code == 400
    assert "pending checks" in response.json()["error"]["fields"]["version"]


def test_removing_an_alias(project, editor, viewer, two_versions):
    editor.put(alias_url(project, "challenger"), {"version": 1}, format="json")
    assert viewer.delete(alias_url(project, "challenger")).status_code == 403
    assert editor.delete(alias_url(project, "challenger")).status_code == 204
    assert editor.delete(alias_url(project, "challenger")).status_code == 404
    assert editor.post(predict_url(project, "challenger"), {"records": [IRIS_ROW]},
                       format="json").status_code == 404


def test_viewers_cannot_move_aliases(project, viewer, two_versions):
    assert viewer.put(alias_url(project, "challenger"), {"version": 1}, format="json").status_code == 403
