"""HTML pages of the tracking UI: permissions, escaping, the runs table and its query budget."""

import io
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from core.models import Job, JobStatus
from experiments import artifacts, services
from experiments.models import Run
from experiments.services import MetricPoint
from experiments.templatetags.steward_ui import markdown_safe
from tests.factories import ExperimentFactory, MembershipFactory, RunFactory, UserFactory


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def experiment(project):
    return ExperimentFactory(project=project, name="baseline")


@pytest.fixture
def member(project):
    def make(role: Role) -> Client:
        user = UserFactory()
        MembershipFactory(project=project, user=user, role=role)
        return _login(user)

    return make


def _run(experiment, name="run", acc=None, lr=None, **kwargs) -> Run:
    run = RunFactory(experiment=experiment, name=name, **kwargs)
    if acc is not None:
        services.metrics_log(run=run, points=[MetricPoint("acc", acc, 0, 1_700_000_000_000)])
    if lr is not None:
        services.params_log(run=run, pairs=[("lr", str(lr))])
    return run


def _pages(project, experiment, run, job):
    slug = project.slug
    return [
        reverse("experiments:project", args=[slug]),
        reverse("experiments:members", args=[slug]),
        reverse("experiments:experiment", args=[slug, experiment.pk]),
        reverse("experiments:experiment", args=[slug, experiment.pk]) + "?tab=leaderboard",
        reverse("experiments:compare", args=[slug]) + f"?runs={run.pk}&runs={run.pk}",
        reverse("experiments:run", args=[run.pk]),
        reverse("experiments:run-artifacts", args=[run.pk]),
        reverse("experiments:artifact-preview", args=[run.pk]) + "?path=a.txt",
        reverse("experiments:job", args=[job.pk]),
        reverse("experiments:job-progress", args=[job.pk]),
    ]


def test_outsider_gets_404_on_every_page_and_form(project, experiment):
    run = _run(experiment, acc=0.5)
    job = Job.objects.create(kind="run_summary", project=project)
    outsider = _login(UserFactory())
    for url in _pages(project, experiment, run, job):
        assert outsider.get(url).status_code == 404, url
    for name in ("run-notes", "run-tag-set", "run-tag-delete", "run-summary"):
        response = outsider.post(reverse(f"experiments:{name}", args=[run.pk]), {"notes": "x", "key": "k"})
        assert response.status_code == 404, name
    assert outsider.post(reverse("experiments:members", args=[project.slug]),
                         {"username": "x", "role": "owner"}).status_code == 404


def test_member_sees_every_page(project, experiment, member):
    run = _run(experiment, acc=0.5)
    data = b"a,b\n1,2\n"
    artifacts.artifact_upload(run=run, path="a.txt", stream=io.BytesIO(data), content_length=len(data))
    job = Job.objects.create(kind="run_summary", project=project)
    viewer = member(Role.VIEWER)
    for url in _pages(project, experiment, run, job):
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert b"Traceback" not in response.content


def test_anonymous_user_is_sent_to_login(project):
    response = Client().get(reverse("experiments:project", args=[project.slug]))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_viewer_cannot_edit_notes_or_tags(project, experiment, member):
    run = _run(experiment, notes="original")
    viewer = member(Role.VIEWER)
    notes_url = reverse("experiments:run-notes", args=[run.pk])
    assert viewer.post(notes_url, {"notes": "hacked"}).status_code == 403
    tag_url = reverse("experiments:run-tag-set", args=[run.pk])
    assert viewer.post(tag_url, {"key": "k", "value": "v"}).status_code == 403
    assert viewer.post(reverse("experiments:run-summary", args=[run.pk])).status_code == 403
    run.refresh_from_db()
    assert run.notes == "original"
    assert not run.tags.exists()
    page = viewer.get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert "Save notes" not in page and "Set tag" not in page


def test_editor_edits_notes_and_tags(project, experiment, member):
    run = _run(experiment)
    editor = member(Role.EDITOR)
    notes_url = reverse("experiments:run-notes", args=[run.pk])
    response = editor.post(notes_url, {"notes": "# Findings\nlr **matters**"})
    assert response.status_code == 302
    editor.post(reverse("experiments:run-tag-set", args=[run.pk]), {"key": "team", "value": "vision"})
    page = editor.get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert "<h1>Findings</h1>" in page and "<strong>matters</strong>" in page
    assert dict(run.tags.values_list("key", "value")) == {"team": "vision"}
    editor.post(reverse("experiments:run-tag-delete", args=[run.pk]), {"key": "team"})
    assert not run.tags.exists()


def test_bad_tag_key_is_reported_not_stored(project, experiment, member):
    run = _run(experiment)
    editor = member(Role.EDITOR)
    response = editor.post(reverse("experiments:run-tag-set", args=[run.pk]),
                           {"key": "bad\x00key", "value": "v"}, follow=True)
    assert response.status_code == 200
    assert "Tag not saved" in response.content.decode()
    assert not run.tags.exists()


def test_csrf_is_enforced_on_forms(project, experiment):
    run = _run(experiment, notes="original")
    user = UserFactory()
    MembershipFactory(project=project, user=user, role=Role.OWNER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("experiments:run-notes", args=[run.pk]), {"notes": "x"}).status_code == 403
    assert client.post(reverse("experiments:home"), {"slug": "new-one"}).status_code == 403
    run.refresh_from_db()
    assert run.notes == "original"


def test_run_name_and_notes_render_inert(project, experiment, member):
    run = _run(experiment, name="<script>alert(1)</script>", acc=0.1,
               notes="[click](javascript:alert(2)) <img src=x onerror=alert(3)> <script>alert(4)</script>")
    viewer = member(Role.VIEWER)
    for url in (reverse("experiments:run", args=[run.pk]),
                reverse("experiments:experiment", args=[project.slug, experiment.pk])):
        page = viewer.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    page = viewer.get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert "javascript:" not in page
    assert "onerror" not in page
    assert "<script>alert(4)" not in page


def test_markdown_keeps_safe_links_only():
    html = markdown_safe("[ok](https://example.org) [mail](mailto:a@b.c) [bad](javascript:alert(1)) "
                         "[data](data:text/html,x)")
    assert 'href="https://example.org"' in html and 'href="mailto:a@b.c"' in html
    assert "javascript:" not in html and "data:" not in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_runs_table_filters_and_sorts(project, experiment, member):
    for i, acc in enumerate([0.2, 0.9, 0.5, 0.7]):
        _run(experiment, name=f"r{i}", acc=acc, lr=0.1 * (i + 1))
    viewer = member(Role.VIEWER)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    response = viewer.get(url, {"filter": "metrics.acc > 0.4", "order_by": "metrics.acc ASC"})
    assert response.status_code == 200
    names = [row["run"].name for row in response.context["rows"]]
    assert names == ["r2", "r3", "r1"]
    header = response.content.decode()
    assert "metrics.acc" in header and "▲" in header


def test_bad_filter_is_shown_inline(project, experiment, member):
    _run(experiment, acc=0.5)
    viewer = member(Role.VIEWER)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    # The page renders (200) with the parser's message next to the box, not a server error.
    response = viewer.get(url, {"filter": "metrics.acc >>> 'x"})
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="filter-error"' in page
    assert "Filter error" in page
    response = viewer.get(url, {"tab": "leaderboard", "metric": "acc", "filter": "nonsense"})
    assert response.status_code == 200 and "Filter error" in response.content.decode()


def test_column_chooser_shows_only_chosen_columns(project, experiment, member):
    run = _run(experiment, acc=0.5, lr=0.1)
    services.tags_set(run=run, pairs=[("team", "vision")])
    viewer = member(Role.VIEWER)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    response = viewer.get(url, {"cols_set": "1", "cols": ["tags.team"]})
    assert [c["id"] for c in response.context["columns"]] == ["tags.team"]
    assert "vision" in response.content.decode()
    # Remembered for this user and experiment; someone else starts from the defaults.
    response = viewer.get(url)
    assert [c["id"] for c in response.context["columns"]] == ["tags.team"]
    response = member(Role.VIEWER).get(url)
    assert {c["id"] for c in response.context["columns"]} == {"metrics.acc", "params.lr"}


def test_runs_table_paginates_with_cursor(project, experiment, member):
    for i in range(30):
        _run(experiment, name=f"r{i:02d}", acc=i / 30)
    viewer = member(Role.VIEWER)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    first = viewer.get(url, {"page_size": 25, "order_by": "metrics.acc DESC"})
    assert len(first.context["rows"]) == 25
    next_url = first.context["next_url"]
    assert next_url
    second = viewer.get(url + next_url)
    assert len(second.context["rows"]) == 5
    seen = {r["run"].pk for r in first.context["rows"]} | {r["run"].pk for r in second.context["rows"]}
    assert len(seen) == 30
    assert second.context["next_url"] is None


def test_runs_table_query_count_does_not_grow_with_page_size(project, experiment, member):
    for i in range(60):
        run = _run(experiment, name=f"r{i}", acc=i / 60, lr=i)
        services.tags_set(run=run, pairs=[("k", "v")])
    viewer = member(Role.VIEWER)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    viewer.get(url)  # warm the session and role caches
    with CaptureQueriesContext(connection) as small:
        assert len(viewer.get(url, {"page_size": 25}).context["rows"]) == 25
    with CaptureQueriesContext(connection) as large:
        assert len(viewer.get(url, {"page_size": 50}).context["rows"]) == 50
    assert len(large.captured_queries) == len(small.captured_queries)


def test_leaderboard_ranks_by_chosen_metric(project, experiment, member):
    for name, acc in (("low", 0.1), ("best", 0.95), ("mid", 0.5)):
        _run(experiment, name=name, acc=acc)
    _run(experiment, name="no-metric")
    viewer = member(Role.VIEWER)
    url = reverse("experiments:experiment", args=[project.slug, experiment.pk])
    response = viewer.get(url, {"tab": "leaderboard", "metric": "acc"})
    assert [r["run"].name for r in response.context["rows"]] == ["best", "mid", "low"]
    assert 'class="best"' in response.content.decode()
    response = viewer.get(url, {"tab": "leaderboard", "metric": "acc", "goal": "min"})
    assert [r["run"].name for r in response.context["rows"]][0] == "low"


def test_compare_highlights_differences(project, experiment, member):
    a = _run(experiment, name="a", acc=0.5, lr=0.1)
    b = _run(experiment, name="b", acc=0.7, lr=0.2)
    services.params_log(run=a, pairs=[("depth", "18")])
    services.params_log(run=b, pairs=[("depth", "18")])
    viewer = member(Role.VIEWER)
    response = viewer.get(reverse("experiments:compare", args=[project.slug]), {"runs": [a.pk, b.pk]})
    assert response.status_code == 200
    table = {row["key"]: row for row in response.context["param_table"]}
    assert table["lr"]["differs"] and not table["depth"]["differs"]
    assert 'id="compare-data"' in response.content.decode()


def test_compare_refuses_too_few_runs_and_foreign_runs(project, experiment, member):
    a = _run(experiment, name="a")
    other = RunFactory()
    viewer = member(Role.VIEWER)
    url = reverse("experiments:compare", args=[project.slug])
    response = viewer.get(url, {"runs": [a.pk]})
    assert response.status_code == 200 and "between 2 and 20" in response.content.decode()
    assert not response.context["rows"]
    assert viewer.get(url, {"runs": [a.pk, other.pk]}).status_code == 404
    assert viewer.get(url, {"runs": [a.pk, "not-a-uuid"]}).status_code == 404
    too_many = viewer.get(url, {"runs": [a.pk] + [str(uuid.uuid4()) for _ in range(20)]})
    assert "between 2 and 20" in too_many.content.decode()


def test_csv_preview_reads_a_bounded_table(project, experiment, member):
    run = _run(experiment)
    data = ("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(5000))).encode()
    artifacts.artifact_upload(run=run, path="data/big.csv", stream=io.BytesIO(data), content_length=len(data))
    viewer = member(Role.VIEWER)
    response = viewer.get(reverse("experiments:artifact-preview", args=[run.pk]), {"path": "data/big.csv"})
    assert response.status_code == 200
    assert response.context["header"] == ["x", "y"]
    assert len(response.context["rows"]) == 199 or len(response.context["rows"]) == 200
    assert response.context["truncated"]
    assert f"/api/v1/runs/{run.pk}/artifacts/data/big.csv" in response.content.decode()
    tree = viewer.get(reverse("experiments:run-artifacts", args=[run.pk]), {"prefix": "data"})
    assert "big.csv" in tree.content.decode()


def test_preview_of_bad_or_missing_path(project, experiment, member):
    run = _run(experiment)
    viewer = member(Role.VIEWER)
    url = reverse("experiments:artifact-preview", args=[run.pk])
    assert viewer.get(url, {"path": "../etc/passwd"}).status_code in (400, 404)
    assert viewer.get(url, {"path": "missing.txt"}).status_code == 404


def test_job_progress_polls_until_final(project, member):
    job = Job.objects.create(kind="run_summary", project=project, status=JobStatus.RUNNING, progress=40,
                             message="Summarised 2 of 5 metrics")
    viewer = member(Role.VIEWER)
    url = reverse("experiments:job-progress", args=[job.pk])
    page = viewer.get(url).content.decode()
    assert 'hx-trigger="every 1s"' in page and 'value="40"' in page and "Summarised 2 of 5" in page
    Job.objects.filter(pk=job.pk).update(status=JobStatus.FAILED, error="boom")
    page = viewer.get(url).content.decode()
    assert "hx-trigger" not in page and "boom" in page


def test_summarise_button_queues_a_job(
    project, experiment, member, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    run = _run(experiment, acc=0.5)
    editor = member(Role.EDITOR)
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(reverse("experiments:run-summary", args=[run.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    job = Job.objects.get(kind="run_summary")
    assert f'id="job-{job.pk}"' in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.result["metrics"]["acc"]["count"] == 1
    page = editor.get(reverse("experiments:run", args=[run.pk])).content.decode()
    assert "100%" in page


def test_project_page_lets_editors_create_experiments(project, member):
    editor = member(Role.EDITOR)
    response = editor.post(reverse("experiments:project", args=[project.slug]), {"name": "sweep-1"})
    assert response.status_code == 302
    assert project.experiments.filter(name="sweep-1").exists()
    viewer = member(Role.VIEWER)
    assert viewer.post(reverse("experiments:project", args=[project.slug]), {"name": "x"}).status_code == 403


def test_reviews_and_monitors_pages_open(project, member):
    viewer = member(Role.VIEWER)
    assert viewer.get(reverse("governance:inbox")).status_code == 200
    assert viewer.get(reverse("monitoring:index")).status_code == 200
