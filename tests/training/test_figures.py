"""Stored Plotly figures are drawn without anything that makes a viewer's browser fetch elsewhere."""

import json

import pytest
from django.test import Client

from accounts.models import Role
from tests.factories import ExperimentFactory, MembershipFactory, RunFactory, UserFactory
from training.figures import figure_clean

DOT = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8"
       "AAAAASUVORK5CYII=")

HOSTILE = {
    "data": [
        {"type": "scatter", "x": [1, 2, 3], "y": [3, 1, 2], "name": "ok",
         "hovertext": ["<span style='background:url(https://track.example/a.png)'>x</span>", "b", "c"]},
        {"type": "image", "source": "https://track.example/trace.png"},
        {"type": "image", "source": DOT},
        {"type": "choroplethmap", "geojson": "https://track.example/shapes.json", "locations": ["a"]},
        {"type": "scattergeo", "lat": [1], "lon": [2]},
        {"type": "choropleth", "geojson": {"type": "FeatureCollection", "features": []}},
    ],
    "layout": {
        "title": {"text": "accuracy: held-out"},
        "images": [
            {"source": "https://track.example/pixel.png", "x": 0, "y": 1},
            {"source": "//track.example/protocol-relative.png"},
            {"source": " HTTP://track.example/upper.png"},
            {"source": "/api/v1/runs/x/artifacts/logo.png"},
            {"source": DOT, "x": 0.5, "y": 0.5},
        ],
        "map": {"style": "https://track.example/style.json", "layers": [{"source": "https://track.example/t"}]},
        "mapbox2": {"style": "open-street-map"},
        "geo": {"projection": {"type": "mercator"}},
        "template": {"layout": {"images": [{"source": "https://track.example/template.png"}]},
                     "data": {"scattermapbox": [{"marker": {"size": 3}}], "scatter": [{"mode": "lines"}]}},
        "updatemenus": [{"buttons": [
            {"method": "relayout", "args": ["images[0].source", "https://track.example/click.png"]},
            {"method": "relayout", "args": [{"images[0].source": "https://track.example/click2.png",
                                             "title.text": "x: y"}]},
            {"method": "restyle", "args": [{"type": "scattergeo"}]},
        ]}],
    },
    "frames": [{"data": [{"type": "scattermap", "lat": [1]}, {"type": "bar", "y": [1]}],
                "layout": {"images": [{"source": "https://track.example/frame.png"}]}}],
}


def fetchable(figure) -> list[str]:
    text = json.dumps(figure)
    return [s for s in ("track.example", "/api/v1/runs/x") if s in text]


def test_every_external_source_is_stripped_and_the_rest_kept():
    clean = figure_clean(HOSTILE)
    assert fetchable(HOSTILE) and fetchable(clean) == []
    # What is not fetched stays: traces, inline images, text, inline GeoJSON.
    assert [t["type"] for t in clean["data"]] == ["scatter", "image", "image"]
    assert clean["data"][2]["source"] == DOT and "source" not in clean["data"][1]
    assert clean["data"][0]["x"] == [1, 2, 3]
    assert clean["data"][0]["hovertext"] == ["<span style='background:'>x</span>", "b", "c"]
    assert [i.get("source") for i in clean["layout"]["images"]] == [None, None, None, None, DOT]
    assert clean["layout"]["images"][4] == {"source": DOT, "x": 0.5, "y": 0.5}
    assert clean["layout"]["title"] == {"text": "accuracy: held-out"}
    # Map and geo subplots load tiles, fonts and outlines from third parties: they go.
    assert not {"map", "mapbox2", "geo"} & set(clean["layout"])
    assert clean["layout"]["template"]["data"] == {"scatter": [{"mode": "lines"}]}
    assert [t["type"] for t in clean["frames"][0]["data"]] == ["bar"]
    buttons = clean["layout"]["updatemenus"][0]["buttons"]
    assert buttons[0]["args"] == ["images[0].source", ""]
    assert buttons[1]["args"] == [{"title.text": "x: y"}]
    assert buttons[2]["args"] == [{}]
    # The stored figure itself is not changed.
    assert HOSTILE["layout"]["images"][0]["source"] == "https://track.example/pixel.png"


def test_a_figure_deeper_than_the_recursion_limit_is_cleaned():
    deep: dict = {"source": "https://track.example/deep.png"}
    for _ in range(5000):
        deep = {"a": [deep]}
    clean = figure_clean({"data": [], "layout": deep})
    node, depth = clean["layout"], 0
    while "a" in node:
        node, depth = node["a"][0], depth + 1
    assert depth == 5000 and node == {}


@pytest.fixture
def run(project):
    return RunFactory(experiment=ExperimentFactory(project=project))


def _client(project, role) -> Client:
    user = UserFactory()
    if role is not None:
        MembershipFactory(project=project, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_the_run_page_draws_a_stored_figure_cleaned_and_the_download_is_unchanged(project, run, editor):
    raw = json.dumps(HOSTILE).encode()
    assert editor.generic("PUT", f"/api/v1/runs/{run.pk}/artifacts/plots/evil.json", raw,
                          content_type="application/json").status_code == 201
    viewer = _client(project, Role.VIEWER)
    response = viewer.get(f"/runs/{run.pk}/figures/plots/evil.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert fetchable(response.json()) == []
    assert response.json()["layout"]["images"][4]["source"] == DOT
    # Downloading the artifact still gives what was uploaded, byte for byte.
    download = editor.get(f"/api/v1/runs/{run.pk}/artifacts/plots/evil.json")
    assert b"".join(download.streaming_content) == raw


def test_a_figure_python_wrote_with_nan_is_drawn_with_null(project, run, editor):
    editor.generic("PUT", f"/api/v1/runs/{run.pk}/artifacts/plots/nan.json",
                   b'{"data": [{"type": "scatter", "y": [1, NaN]}], "layout": {}}',
                   content_type="application/json")
    response = _client(project, Role.VIEWER).get(f"/runs/{run.pk}/figures/plots/nan.json")
    assert response.status_code == 200
    assert response.json()["data"][0]["y"] == [1, None]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("plots/broken.json", b"{nope", "figure"),
    ("plots/list.json", b"[1, 2]", "figure"),
    ("plots/deep.json", b"[" * 100_000, "figure"),
    ("model/notes.json", b"{}", "path"),
])
def test_what_is_not_a_figure_is_a_400_naming_it(project, run, editor, path, body, field):
    editor.generic("PUT", f"/api/v1/runs/{run.pk}/artifacts/{path}", body, content_type="application/json")
    response = _client(project, Role.VIEWER).get(f"/runs/{run.pk}/figures/{path}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_outsiders_get_404(project, run, editor):
    editor.generic("PUT", f"/api/v1/runs/{run.pk}/artifacts/plots/a.json", b'{"data": []}',
                   content_type="application/json")
    assert _client(project, None).get(f"/runs/{run.pk}/figures/plots/a.json").status_code == 404
    assert _client(project, Role.VIEWER).get(f"/runs/{run.pk}/figures/plots/missing.json").status_code == 404
