"""The calls an MLflow script reaches for, each against a live server."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import threading
import time
import uuid

import matplotlib
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import steward
import yaml
from PIL import Image

from experiments.models import Experiment, Metric, Param, Run, Tag

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402 - after choosing the headless backend

pytestmark = pytest.mark.live


@pytest.fixture
def configured(steward_server, account):
    steward.configure(url=steward_server.url, token=account.token, project=account.project)
    return account


def test_set_experiment_creates_it_and_the_next_runs_log_there(configured):
    first = steward.set_experiment("churn")
    assert first["name"] == "churn" and first["project"] == configured.project and first["id"]
    again = steward.set_experiment("churn")  # an existing experiment is found, not duplicated
    assert again["id"] == first["id"]
    assert Experiment.objects.filter(project__slug=configured.project, name="churn").count() == 1
    with steward.start_run(capture=False) as run:
        pass
    assert Run.objects.get(pk=run.id).experiment.name == "churn"
    assert steward.search_runs(output_format="list")[0].id == run.id  # searches the chosen experiment


def test_logging_without_a_run_starts_one_and_end_run_ends_it(configured):
    steward.set_experiment("fluent")
    assert steward.active_run() is None
    steward.log_param("alpha", 0.5)
    run = steward.active_run()
    assert run is not None and run.experiment == "fluent"
    steward.log_metric("loss", 0.25)
    steward.log_metrics({"acc": 0.9}, step=3)
    steward.set_tag("stage", "dev")
    steward.end_run(status="KILLED")
    assert steward.active_run() is None
    steward.end_run()  # nothing active: nothing happens, as in MLflow
    row = Run.objects.get(pk=run.id)
    assert row.status == "KILLED" and row.experiment.name == "fluent"
    assert Param.objects.get(run=row, key="alpha").value == "0.5"
    assert Metric.objects.get(run=row, key="acc").step == 3
    assert Tag.objects.get(run=row, key="stage").value == "dev"


def test_start_run_takes_mlflow_names(configured):
    with steward.start_run(experiment="names", run_name="baseline", description="first try",
                           capture=False) as run:
        assert run.info.run_id == run.id and run.info.run_name == "baseline"
    row = Run.objects.get(pk=run.id)
    assert (row.name, row.notes) == ("baseline", "first try")
    with pytest.raises(TypeError, match="both run_name"):
        steward.start_run(name="a", run_name="b")
    with pytest.raises(TypeError, match="unexpected keyword"):
        steward.start_run(run_nmae="typo")


def test_nested_runs_record_their_parent(configured):
    with steward.start_run(experiment="cv", run_name="search", capture=False) as parent:
        with steward.start_run(run_name="fold-1", nested=True, capture=False) as child:
            assert steward.active_run() is child
            child.log_metric("acc", 0.8)
        assert steward.active_run() is parent
        with steward.start_run(run_name="loose", capture=False) as loose:
            pass
    assert Run.objects.get(pk=child.id).parent_id == uuid.UUID(parent.id)
    assert Run.objects.get(pk=loose.id).parent_id is None
    stored = steward.get_run(child.id)
    assert stored.parent_run_id == parent.id and child.parent_run_id == parent.id
    found = steward.search_runs(experiment_names=["cv"], filter_string="attributes.name = 'fold-1'")
    assert list(found["parent_run_id"]) == [parent.id]


def test_run_id_resumes_a_running_run_and_an_ended_one_is_refused(configured):
    with steward.Client() as client:
        crashed = client.create_run(None, "resume", name="long job")
        client.log_batch(crashed.id, params={"lr": 0.1},
                         metrics=[{"key": "loss", "value": 1.0 / (s + 1), "step": s} for s in range(3)])
    with steward.start_run(run_id=crashed.id) as resumed:
        assert (resumed.experiment, resumed.name) == ("resume", "long job")
        resumed.log_metric("loss", 0.2)  # goes on from the stored step
        resumed.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(steward.ConflictError):
            resumed.log_param("lr", 0.5)
        resumed.log_dataset(pd.DataFrame({"x": [1, 2, 3]}), "resume-input")  # it is known to the server
    assert list(Metric.objects.filter(run_id=crashed.id, key="loss").order_by("step")
                .values_list("step", flat=True)) == [0, 1, 2, 3]
    assert Run.objects.get(pk=crashed.id).status == "FINISHED"

    with pytest.raises(steward.StewardError, match="FINISHED: a run that ended cannot be resumed"):
        steward.start_run(run_id=crashed.id)
    with steward.Client() as client, pytest.raises(steward.InvalidRequestError) as refused:
        client.update_run(crashed.id, status="RUNNING")
    assert "status" in refused.value.fields
    assert Run.objects.get(pk=crashed.id).status == "FINISHED"


def test_log_system_metrics_samples_cpu_and_memory(configured, monkeypatch):
    pytest.importorskip("psutil")
    monkeypatch.setenv("STEWARD_SYSTEM_METRICS", "0.05")
    with steward.start_run(experiment="sys", log_system_metrics=False, capture=False) as off:
        time.sleep(0.3)
    with steward.start_run(experiment="sys", log_system_metrics=True, capture=False) as on:
        time.sleep(0.3)
    assert not Metric.objects.filter(run_id=off.id).exists()
    assert Metric.objects.filter(run_id=on.id, key="system/cpu_percent").exists()


def test_a_metric_value_must_be_a_real_number(configured):
    with steward.start_run(experiment="types", capture=False) as run:
        for bad in ("0.3", True, np.bool_(False), None, [0.3], np.array([0.3, 0.4]), 1 + 2j):
            with pytest.raises(TypeError, match="must be a number"):
                run.log_metric("m", bad)
        with pytest.raises(TypeError):
            steward.log_metric("m", "0.3")
        run.log_metric("m", np.float32(0.5))
        run.log_metric("m", np.int64(3))
        run.log_metric("m", 7)
        run.log_metric("m", np.float64("nan"))
    points = Metric.objects.filter(run_id=run.id, key="m").order_by("step")
    values = list(points.values_list("value", flat=True))
    assert values == [0.5, 3.0, 7.0, None]  # nothing of the refused values arrived; NaN is stored as NULL


def test_params_are_sent_in_one_canonical_form(configured):
    with steward.start_run(experiment="canon", tags={"flag": np.bool_(True), "none": None},
                           capture=False) as run:
        run.log_params({"C": np.float64(1.0), "depth": None, "balanced": True, "n": np.int64(3),
                        "grid": [np.float64(0.5), 1], "lr": 0.1, "name": "rf"})
    params = dict(Param.objects.filter(run_id=run.id).values_list("key", "value"))
    assert params == {"C": "1.0", "depth": "None", "balanced": "True", "n": "3", "grid": "[0.5, 1]",
                      "lr": "0.1", "name": "rf"}
    assert dict(Tag.objects.filter(run_id=run.id, key__in=["flag", "none"]).values_list("key", "value")) == {
        "flag": "True", "none": "None"}
    with steward.Client() as client:
        client.log_batch(run.id, params={"gamma": np.float64(2.0)})
    assert Param.objects.get(run_id=run.id, key="gamma").value == "2.0"


def _download(client, run_id, path, tmp_path) -> bytes:
    return client.download_artifact(run_id, path, tmp_path).read_bytes()


def test_log_dict_text_figure_and_image(configured, tmp_path):
    config = {"layers": [64, 32], "lr": np.float64(0.001), "weights": np.array([1, 2])}
    fig = Figure()
    fig.add_subplot().plot([0, 1, 2], [2, 1, 3])
    plotly_fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[1, 2] = (255, 10, 20)
    grey = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    with steward.start_run(experiment="media", capture=False) as run:
        steward.log_dict(config, "config.json")
        steward.log_dict({"a": 1, "b": [1, 2]}, "config.yaml")
        steward.log_text("hello", "notes/hello.txt")
        steward.log_figure(fig, "plots/curve.png")
        steward.log_figure(fig, "plots/curve.svg")
        steward.log_figure(plotly_fig, "plots/scatter.html")
        steward.log_figure(plotly_fig, "plots/scatter.json")
        steward.log_image(pixels, "images/rgb.png")
        steward.log_image(grey, "images/grey.png")
        steward.log_image(Image.new("RGBA", (3, 2), (1, 2, 3, 4)), "images/pil.png")
        with pytest.raises(ValueError, match="0.0..1.0"):
            steward.log_image(grey * 2, "images/bad.png")
        with pytest.raises(TypeError, match="matplotlib Figure or a Plotly figure"):
            steward.log_figure("not a figure", "x.png")

    client = steward.Client()
    assert json.loads(_download(client, run.id, "config.json", tmp_path)) == {
        "layers": [64, 32], "lr": 0.001, "weights": [1, 2]}
    assert yaml.safe_load(_download(client, run.id, "config.yaml", tmp_path)) == {"a": 1, "b": [1, 2]}
    assert _download(client, run.id, "notes/hello.txt", tmp_path) == b"hello"
    assert _download(client, run.id, "plots/curve.png", tmp_path).startswith(b"\x89PNG")
    assert b"<svg" in _download(client, run.id, "plots/curve.svg", tmp_path)
    html = _download(client, run.id, "plots/scatter.html", tmp_path).decode()
    # plotly.js is inside the page, none is fetched from elsewhere: it opens offline
    assert "Plotly.newPlot" in html and len(html) > 1_000_000
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert json.loads(_download(client, run.id, "plots/scatter.json", tmp_path))["data"][0]["y"] == [3, 1, 2]
    rgb = np.asarray(Image.open(io.BytesIO(_download(client, run.id, "images/rgb.png", tmp_path))))
    assert rgb.shape == (4, 6, 3) and (rgb == pixels).all()
    grey_back = np.asarray(Image.open(io.BytesIO(_download(client, run.id, "images/grey.png", tmp_path))))
    assert (grey_back == np.round(grey * 255).astype(np.uint8)).all()
    pil = Image.open(io.BytesIO(_download(client, run.id, "images/pil.png", tmp_path)))
    assert pil.getpixel((0, 0)) == (1, 2, 3, 4)
    files = {f["path"] for f in client.list_artifacts(run.id, recursive=True)}
    assert "images/bad.png" not in files
    client.close()


def test_search_runs_and_get_run(configured):
    steward.set_experiment("search")
    for lr in (0.1, 0.01):
        with steward.start_run(run_name=f"lr {lr}", capture=False) as run:
            run.log_param("lr", lr)
            run.log_metric("acc", 1 - lr)
    frame = steward.search_runs(filter_string="metrics.acc > 0.5", order_by=["metrics.acc DESC"])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["params.lr"]) == ["0.01", "0.1"]
    assert list(frame["metrics.acc"]) == pytest.approx([0.99, 0.9])
    runs = steward.search_runs(filter_string="params.lr = '0.1'", output_format="list")
    assert [r.name for r in runs] == ["lr 0.1"]
    with pytest.raises(steward.NotFoundError, match="nothing-here"):
        steward.search_runs(experiment_names=["nothing-here"])
    assert len(steward.search_runs(search_all_experiments=True, output_format="list")) == 2
    stored = steward.get_run(runs[0].id[:8])  # the short id that `steward runs list` prints
    assert stored.id == runs[0].id and stored.metrics == {"acc": pytest.approx(0.9)}


def test_log_model_sends_the_buffered_metrics_before_registering(configured):
    pytest.importorskip("skops")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    with steward.start_run(experiment="register", capture=False) as run:
        run.log_metric("val_accuracy", 0.95)
        run.log_metric("val_loss", 0.12)
        version = run.log_model(model, registered_model="iris", input_example=X.head(20), wait=False)
    assert version["metrics"] == {"val_accuracy": 0.95, "val_loss": 0.12}


def test_a_refused_batch_reaches_the_users_thread_while_system_metrics_run(configured, caplog):
    pytest.importorskip("psutil")
    other = steward.Client()
    with steward.start_run(experiment="deferred", system_metrics=0.02, capture=False) as run:
        other.log_batch(run.id, params={"lr": "0.5"})
        with caplog.at_level(logging.ERROR, logger="steward"):
            run.log_param("lr", 0.1)  # the server has another value: its batch is refused
            deadline = time.monotonic() + 20
            while "refused logged data" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        assert "refused logged data" in caplog.text
        sampled = Metric.objects.filter(run_id=run.id, key="system/cpu_percent").count
        before = sampled()
        # The sampler goes on logging after the refusal, and it neither raises nor swallows it.
        deadline = time.monotonic() + 20
        while sampled() <= before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sampled() > before + 2
        assert any(t.name == "steward-system-metrics" for t in threading.enumerate())
        with pytest.raises(steward.ConflictError, match="Param 'lr' is already logged as '0.5'"):
            run.log_metric("after", 1.0)
        run.log_metric("after", 1.0)  # raised once, then logging goes on
    other.close()
    assert Metric.objects.filter(run_id=run.id, key="after").count() == 1
    assert math.isfinite(Metric.objects.filter(run_id=run.id, key="system/cpu_percent").first().value)


def test_download_artifact_and_download_artifacts_return_paths(configured, tmp_path):
    with steward.start_run(experiment="paths", capture=False) as run:
        run.log_text("x", "a/b.txt")
    with steward.Client() as client:
        one = client.download_artifact(run.id, "a/b.txt", tmp_path / "one")
        folder = client.download_artifacts(run.id, "a", tmp_path / "many")
        everything = client.download_artifacts(run.id, dest_dir=tmp_path / "all")
    assert type(one) is type(folder) is type(everything)
    assert one.read_text() == "x" and (folder / "b.txt").read_text() == "x"
    assert (everything / "a" / "b.txt").read_text() == "x"


def test_an_unreachable_server_still_takes_set_experiment(account, sdk_sandbox):
    from tests.sdk.conftest import free_port

    steward.configure(url=f"http://127.0.0.1:{free_port()}", token=account.token, project=account.project,
                      retry_timeout=0.2)
    assert steward.set_experiment("later") == {"id": None, "name": "later", "description": "",
                                                "project": account.project}
    with steward.start_run(capture=False) as run:
        pass
    created = [json.loads(p.read_text()) for p in sdk_sandbox.rglob("*.create.json")]
    assert [(c["run_id"], c["body"]["experiment"]) for c in created] == [(run.id, "later")]


def test_a_run_resumed_offline_is_found_when_the_spool_is_sent(configured, monkeypatch):
    with steward.Client() as client:
        existing = client.create_run(None, "resume-offline", name="interrupted")
    monkeypatch.setenv("STEWARD_MODE", "offline")
    with steward.start_run(experiment="resume-offline", run_id=existing.id, capture=False) as run:
        run.log_metric("loss", 0.5)
    assert not Metric.objects.filter(run_id=existing.id).exists()
    monkeypatch.delenv("STEWARD_MODE")
    assert steward.sync().ok
    row = Run.objects.get(pk=existing.id)
    assert (row.status, row.name) == ("FINISHED", "interrupted")
    assert Metric.objects.get(run_id=existing.id, key="loss").value == 0.5
    assert Run.objects.filter(experiment__name="resume-offline").count() == 1
