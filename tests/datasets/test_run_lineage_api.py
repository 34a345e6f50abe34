"""Nested runs (a parent link), a status that only moves forward, and finding a run by an id prefix."""

import uuid

import pytest

from accounts.models import Role
from experiments.models import Run
from tests.factories import ProjectFactory, RunFactory


def create(client, project, **body):
    url = f"/api/v1/projects/{project.slug}/runs/"
    return client.post(url, {"experiment": "nest", **body}, format="json")


def test_a_run_created_under_a_parent_shows_it(editor, project):
    parent = create(editor, project, name="search").json()
    assert parent["parent_run_id"] is None
    child = create(editor, project, name="candidate", parent_run_id=parent["id"])
    assert child.status_code == 201, child.content
    assert child.json()["parent_run_id"] == parent["id"]
    assert Run.objects.get(pk=child.json()["id"]).parent_id == uuid.UUID(parent["id"])
    assert editor.get(f"/api/v1/runs/{child.json()['id']}/").json()["parent_run_id"] == parent["id"]
    found = editor.get(f"/api/v1/projects/{project.slug}/runs/search/",
                       {"filter": "attributes.name = 'candidate'"})
    assert [r["parent_run_id"] for r in found.json()["runs"]] == [parent["id"]]


@pytest.mark.parametrize("parent", ["not-a-uuid", str(uuid.uuid4()), "other-project"])
def test_a_parent_outside_the_project_is_400_naming_the_field(editor, project, parent):
    if parent == "other-project":
        parent = str(RunFactory(project=ProjectFactory()).pk)
    response = create(editor, project, parent_run_id=parent)
    assert response.status_code == 400
    assert "parent_run_id" in response.json()["error"]["fields"]
    assert not Run.objects.filter(project=project).exists()


def test_deleting_a_parent_keeps_its_children(editor, project):
    parent = create(editor, project).json()["id"]
    child = create(editor, project, parent_run_id=parent).json()["id"]
    Run.objects.filter(pk=parent).delete()
    assert Run.objects.get(pk=child).parent_id is None


@pytest.mark.parametrize("ended", ["FINISHED", "FAILED", "KILLED"])
def test_an_ended_run_cannot_go_back_to_running(editor, project, ended):
    run_id = create(editor, project).json()["id"]
    assert editor.patch(f"/api/v1/runs/{run_id}/", {"status": ended}, format="json").status_code == 200
    end_time = Run.objects.get(pk=run_id).end_time
    refused = editor.patch(f"/api/v1/runs/{run_id}/", {"status": "RUNNING"}, format="json")
    assert refused.status_code == 400
    assert "cannot go back to RUNNING" in refused.json()["error"]["fields"]["status"]
    row = Run.objects.get(pk=run_id)
    assert (row.status, row.end_time) == (ended, end_time)
    # The same final status again (a replayed end) is fine.
    assert editor.patch(f"/api/v1/runs/{run_id}/", {"status": ended}, format="json").status_code == 200


def test_a_running_run_may_be_set_running_again(editor, project):
    run_id = create(editor, project).json()["id"]
    assert editor.patch(f"/api/v1/runs/{run_id}/", {"status": "RUNNING"}, format="json").status_code == 200


def _run_with_id(client, project, run_id: str) -> None:
    assert create(client, project, id=run_id).status_code == 201


def test_a_run_is_found_by_a_unique_prefix_of_its_id(editor, project):
    _run_with_id(editor, project, "3f2a9c1e-0000-4000-8000-000000000001")
    _run_with_id(editor, project, "3f2a9c1e-0000-4000-8000-000000000002")
    _run_with_id(editor, project, "77aa0000-0000-4000-8000-000000000003")
    one = editor.get("/api/v1/runs/", {"prefix": "77aa"}).json()["runs"]
    assert [(r["id"], r["project"], r["experiment"]) for r in one] == [
        ("77aa0000-0000-4000-8000-000000000003", project.slug, "nest")]
    both = editor.get("/api/v1/runs/", {"prefix": "3F2A9C1E"}).json()["runs"]
    assert [r["id"][-1] for r in both] == ["1", "2"]
    # hyphens may be left in or out, past the first group too
    hyphenated = editor.get("/api/v1/runs/", {"prefix": "3f2a9c1e-0000-4000-8000-00000000000"})
    assert len(hyphenated.json()["runs"]) == 2
    exact = editor.get("/api/v1/runs/", {"prefix": "3f2a9c1e00004000800000000000000"}).json()["runs"]
    assert len(exact) == 2
    assert editor.get("/api/v1/runs/", {"prefix": "3f2a", "project": "elsewhere"}).json()["runs"] == []


def test_prefix_lookup_shows_only_runs_the_user_can_see(editor, outsider, project):
    _run_with_id(editor, project, "5e5e5e5e-0000-4000-8000-000000000001")
    assert outsider.get("/api/v1/runs/", {"prefix": "5e5e5e5e"}).json()["runs"] == []


@pytest.mark.parametrize("prefix", ["", "abc", "xyz123", "3f2a" * 9, "3f2a'; --"])
def test_a_bad_prefix_is_400_naming_it(editor, prefix):
    response = editor.get("/api/v1/runs/", {"prefix": prefix})
    assert response.status_code == 400
    assert "prefix" in response.json()["error"]["fields"]


def test_viewers_may_look_up_runs(member_client, project, editor):
    _run_with_id(editor, project, "abcd0000-0000-4000-8000-000000000001")
    viewer = member_client(Role.VIEWER)
    assert len(viewer.get("/api/v1/runs/", {"prefix": "abcd"}).json()["runs"]) == 1
