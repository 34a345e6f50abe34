import pytest
from django.test import Client

from accounts.models import Role
from registry.models import AliasEvent, ModelAlias, ModelVersion, TrustedModelHash
from tests.factories import MembershipFactory, UserFactory
from tests.registry.conftest import register, store_model

pytestmark = pytest.mark.django_db


def browser_for(project, role):
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def two_versions(project, run, editor, iris_logreg):
    model, X = iris_logreg
    store_model(run, model, example=X)
    return register(project=project, run=run, user=editor.user), register(project=project, run=run,
                                                                          user=editor.user)


def page(project, suffix=""):
    return f"/p/{project.slug}/models/credit-scorer/{suffix}"


def test_pages_render_for_viewers(project, run, two_versions):
    viewer = browser_for(project, Role.VIEWER)
    listing = viewer.get(f"/p/{project.slug}/models/")
    assert listing.status_code == 200
    assert b"credit-scorer" in listing.content
    model = viewer.get(page(project))
    assert model.status_code == 200
    assert b"v2" in model.content and b'id="alias-form"' not in model.content  # viewers cannot move aliases
    version = viewer.get(page(project, "v/1/"))
    assert version.status_code == 200
    text = version.content.decode()
    assert "Served by <b>ONNX Runtime</b>" in text
    assert 'id="try-form"' in text and "sepal length (cm)" in text
    lineage = viewer.get(page(project, "v/1/lineage/"))
    assert lineage.status_code == 200
    assert str(run.pk) in lineage.content.decode()
    compare = viewer.get(page(project, "compare/?a=1&b=2"))
    assert compare.status_code == 200
    assert b'id="comparison"' in compare.content


def test_outsiders_get_404_everywhere(project, two_versions):
    stranger = Client()
    stranger.force_login(UserFactory())
    for url in [f"/p/{project.slug}/models/", page(project), page(project, "v/1/"),
                page(project, "v/1/lineage/"), f"/p/{project.slug}/register-model/"]:
        assert stranger.get(url).status_code == 404, url


def test_pointing_an_alias_from_the_page_and_the_protected_refusal(project, two_versions):
    editor = browser_for(project, Role.EDITOR)
    url = page(project, "aliases/set/")
    response = editor.post(url, {"alias": "challenger", "version": "2"}, follow=True)
    assert "now points to version 2" in response.content.decode()
    assert ModelAlias.objects.get(name="challenger").version.version == 2
    response = editor.post(page(project, "aliases/set/"), {"alias": "champion", "version": "2"}, follow=True)
    assert "protected alias" in response.content.decode()
    assert not ModelAlias.objects.filter(name="champion").exists()
    assert list(AliasEvent.objects.values_list("alias", flat=True)) == ["challenger"]
    viewer = browser_for(project, Role.VIEWER)
    assert viewer.post(page(project, "aliases/set/"), {"alias": "x", "version": "1"}).status_code == 403


def test_only_owners_change_protection(project, two_versions):
    editor = browser_for(project, Role.EDITOR)
    assert editor.post(page(project, "aliases/protected/"), {"protected_aliases": ""}).status_code == 403
    owner = browser_for(project, Role.OWNER)
    owner.post(page(project, "aliases/protected/"), {"protected_aliases": "champion, production, gold"})
    assert ModelVersion.objects.first().model.protected_aliases == ["champion", "gold", "production"]
    refused = owner.post(page(project, "aliases/protected/"), {"protected_aliases": "champion"}, follow=True)
    assert "needs an approved protection change request" in refused.content.decode()
    assert ModelVersion.objects.first().model.protected_aliases == ["champion", "gold", "production"]


def test_registering_from_the_page(project, run, forest, cancer_data):
    store_model(run, forest, example=cancer_data[0].head(20))
    editor = browser_for(project, Role.EDITOR)
    form = editor.get(f"/p/{project.slug}/register-model/?run={run.pk}")
    assert form.status_code == 200
    assert b"model/model.skops" in form.content
    response = editor.post(f"/p/{project.slug}/register-model/",
                           {"run": str(run.pk), "artifact_path": "model/model.skops", "name": "scorer"})
    assert response.status_code == 302
    assert response["Location"] == f"/p/{project.slug}/models/scorer/v/1/"
    bad = editor.post(f"/p/{project.slug}/register-model/",
                      {"run": str(run.pk), "artifact_path": "../../etc/passwd", "name": "scorer"})
    assert bad.status_code == 200
    assert "artifact_path" in bad.content.decode()
    assert ModelVersion.objects.count() == 1


def staff_browser():
    client = Client()
    client.user = UserFactory(is_staff=True)
    client.force_login(client.user)
    return client


@pytest.fixture
def pickle_version(project, run, owner, diabetes_ridge):
    import pickle

    ridge, X = diabetes_ridge
    store_model(run, None, file_name="model.pkl", data=pickle.dumps(ridge), example=X.head(10))
    return register(project=project, run=run, user=owner.user)


def test_with_pickles_off_a_pickle_page_says_how_to_log_skops_and_offers_no_trust(project, pickle_version):
    assert pickle_version.status == "failed"
    admin = staff_browser()
    text = admin.get(page(project, "v/1/")).content.decode()
    assert "pickle and joblib loading is off on this server" in text
    assert "run.log_model(model, registered_model=&quot;credit-scorer&quot;, input_example=X)" in text
    assert "Trust this exact file" not in text
    refused = admin.post(page(project, "v/1/trust/"), {"sha256": pickle_version.sha256})
    assert refused.status_code == 403
    assert "ALLOW_PICKLE_MODELS" in refused.content.decode()
    assert not TrustedModelHash.objects.exists()


def test_a_pickle_page_offers_trust_to_staff_only(project, pickles_on, pickle_version):
    assert pickle_version.status == "pending_checks"
    for role in (Role.EDITOR, Role.OWNER):
        member = browser_for(project, role)
        text = member.get(page(project, "v/1/")).content.decode()
        assert "An instance administrator must trust this exact file" in text
        assert "Trust this exact file" not in text
        refused = member.post(page(project, "v/1/trust/"), {"sha256": pickle_version.sha256})
        assert refused.status_code == 403
        assert "Only an instance administrator" in refused.content.decode()
    assert not TrustedModelHash.objects.exists()

    admin = staff_browser()
    assert b"Trust this exact file" in admin.get(page(project, "v/1/")).content
    wrong = admin.post(page(project, "v/1/trust/"), {"sha256": "0" * 64}, follow=True)
    assert "Confirm by pasting" in wrong.content.decode()
    assert not TrustedModelHash.objects.exists()
    admin.post(page(project, "v/1/trust/"), {"sha256": pickle_version.sha256, "note": "ours"})
    trust = TrustedModelHash.objects.get()
    assert (trust.trusted_by, trust.note) == (admin.user, "ours")
    text = browser_for(project, Role.VIEWER).get(page(project, "v/1/")).content.decode()
    assert f"Trusted by <b>{admin.user.username}</b>" in text
