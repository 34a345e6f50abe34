"""Browsing, filtering, paging and exporting the audit log, for members only."""

import csv
import io

import pytest

from accounts.models import Role
from core.audit import audit_record
from governance.models import AuditEvent
from tests.factories import ProjectFactory, UserFactory
from tests.governance.conftest import browser_for

pytestmark = pytest.mark.django_db


def fill(project, n=5, actor=None, action="alias.moved", object_type="registry.ModelAlias"):
    for i in range(n):
        audit_record(action=action, actor=actor, object_type=object_type, object_id=i, project_id=project.pk,
                     after={"i": i})


def api(project):
    return f"/api/v1/projects/{project.slug}/audit-log/"


def test_members_read_their_projects_events_newest_first_and_page_through(project, viewer):
    fill(project, 7)
    other = ProjectFactory()
    fill(other, 3, action="alias.removed")
    first = viewer.get(api(project), {"max_results": 4, "action": "alias"})
    assert first.status_code == 200
    ids = [e["id"] for e in first.json()["events"]]
    assert len(ids) == 4 and ids == sorted(ids, reverse=True)
    assert {e["project_id"] for e in first.json()["events"]} == {project.pk}
    second = viewer.get(api(project), {"max_results": 4, "action": "alias",
                                       "page_token": first.json()["next_page_token"]})
    rest = [e["id"] for e in second.json()["events"]]
    assert len(rest) == 3 and max(rest) < min(ids)
    assert second.json()["next_page_token"] is None
    assert set(ids + rest) == set(AuditEvent.objects.filter(project_id=project.pk, action="alias.moved")
                                  .values_list("id", flat=True))


def test_filters_by_action_actor_object_type_and_dates(project, viewer):
    ada = UserFactory(username="ada")
    fill(project, 2, actor=ada, action="membership.added", object_type="accounts.Membership")
    fill(project, 3)
    body = viewer.get(api(project), {"actor": "ada"}).json()
    assert len(body["events"]) == 2 and {e["actor"] for e in body["events"]} == {"ada"}
    assert len(viewer.get(api(project), {"action": "membership.added"}).json()["events"]) == 2
    assert len(viewer.get(api(project), {"action": "membership"}).json()["events"]) == 2
    assert len(viewer.get(api(project), {"object_type": "registry.ModelAlias"}).json()["events"]) == 3
    today = AuditEvent.objects.latest("id").created_at.date().isoformat()
    dated = viewer.get(api(project), {"since": today, "until": today, "action": "alias"}).json()
    assert len(dated["events"]) == 3
    assert viewer.get(api(project), {"until": "2000-01-01"}).json()["events"] == []


@pytest.mark.parametrize("params, field", [
    ({"since": "yesterday"}, "since"), ({"max_results": "0"}, "max_results"),
    ({"max_results": "abc"}, "max_results"), ({"page_token": "x1"}, "page_token"),
    ({"since": "2026-02-02", "until": "2026-01-01"}, "until"),
    ({"until": "9999-12-31"}, "until"), ({"actor": "a\x00b"}, "actor"),
])
def test_bad_filters_are_a_400_naming_the_field(project, viewer, params, field):
    response = viewer.get(api(project), params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_outsiders_get_404_and_only_staff_read_the_whole_log(project, outsider, viewer):
    fill(project, 1)
    assert outsider.get(api(project)).status_code == 404
    assert viewer.get("/api/v1/audit-log/").status_code == 403
    staff = browser_for(project, None, is_staff=True)
    assert staff.get(f"/p/{project.slug}/audit/").status_code == 200
    whole = staff.get("/audit/")
    assert whole.status_code == 200 and b"token.created" in whole.content  # events of no project too
    assert b'href="/audit/"' in whole.content  # in the user menu, for staff only
    assert b'href="/audit/"' not in browser_for(project, Role.OWNER).get(f"/p/{project.slug}/").content
    assert browser_for(project, Role.VIEWER).get("/audit/").status_code == 404


def test_the_page_lists_filters_and_pages(project):
    fill(project, 3, action="alias.removed")
    viewer = browser_for(project, Role.VIEWER)
    assert b'href="/p/%s/audit/"' % project.slug.encode() in viewer.get(f"/p/{project.slug}/").content
    page = viewer.get(f"/p/{project.slug}/audit/", {"action": "alias.removed", "max_results": 2})
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("alias.removed</td>") == 2 and 'id="audit-older"' in text
    assert text.count('<option value="alias.removed">') == 1  # each known action offered once
    assert "{&quot;i&quot;: 2}" in text  # the change, as JSON (escaped in the page)
    bad = viewer.get(f"/p/{project.slug}/audit/", {"since": "nope"})
    assert bad.status_code == 200 and 'id="filter-error"' in bad.content.decode()
    assert browser_for(project, None).get(f"/p/{project.slug}/audit/").status_code == 404


def test_csv_export_streams_every_matching_event_as_an_attachment(project):
    fill(project, 4)
    audit_record(action="alias.moved", actor=None, object_type="registry.ModelAlias", object_id="=cmd()",
                 project_id=project.pk)
    viewer = browser_for(project, Role.VIEWER)
    response = viewer.get(f"/p/{project.slug}/audit/export.csv", {"action": "alias.moved"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 5
    assert rows[0]["object_id"] == "'=cmd()"  # a formula is exported as text
    stored = AuditEvent.objects.get(pk=rows[1]["id"])
    assert rows[1]["hash"] == stored.hash and rows[1]["after"] == '{"i": 3}'
    assert viewer.get(f"/p/{project.slug}/audit/export.csv", {"since": "x"}).status_code == 400
    assert browser_for(project, None).get(f"/p/{project.slug}/audit/export.csv").status_code == 404
