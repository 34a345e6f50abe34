"""Server time of the web UI's heaviest requests, next to MLflow doing the same on the same data.

Run by hand (not in CI):

    .venv/bin/python bench/ui.py            # Steward on a fresh PostgreSQL database (steward_uibench)
    .venv/bin/python bench/ui.py --sqlite   # Steward on a fresh SQLite file
    # MLflow side, in its own venv:
    #   make bench-deps          (MLflow in its own .venv-bench)

Seeds one experiment with 10,000 runs (10 params, 10 metrics each) and one run
holding a 1,000,000-point metric, then times (median of --repeat requests after
one warm-up):

  runs table       the experiment page, first page of 100 runs
  filter + sort    the same page with `metrics.m0 > 0.5 and params.p1 = 'adam'`, sorted by metrics.m1 DESC
  run page         the run page of the run with the long metric
  chart data       that metric's history downsampled to 1,500 points (what the chart asks for)

Steward is timed in-process with Django's test Client (the whole request:
middleware, permission checks, queries, template rendering). MLflow 3 is timed
over HTTP against `mlflow server` (one worker, SQLite backend store: the bench
venv has no PostgreSQL driver) doing the API calls its UI makes for the same
views: runs/search (100 runs), the same search filtered and sorted, runs/get,
and metrics/get-history-bulk-interval (the UI's downsampled chart call, 320
points by default; asked for 1,500 here), plus one full get-history of the long metric.
Target for Steward: each <= 300 ms median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
PG_DB = "steward_uibench"
MLFLOW_PYTHON = Path(os.environ.get("MLFLOW_PYTHON", str(ROOT / ".venv-bench" / "bin" / "python")))
TARGET_MS = 300.0

N_PARAMS = 10
N_METRICS = 10
FILTER = "metrics.m0 > 0.5 and params.p1 = 'adam'"
ORDER_BY = "metrics.m1 DESC"
PAGE = 100
CHART_POINTS = 1_500
LONG_KEY = "loss"
BASE_MS = 1_700_000_000_000


# Deterministic data, generated the same way for both systems.
def param_value(i: int, j: int) -> str:
    if j == 0:
        return ["0.1", "0.01", "0.001"][i % 3]
    if j == 1:
        return ["adam", "sgd", "rmsprop"][(i // 3) % 3]
    return str((i * (j + 3)) % 97)


def metric_value(i: int, j: int) -> float:
    return ((i * (j + 7) * 2654435761) % 10007) / 10007


def long_value(step: int) -> float:
    return 2.0 / (1 + step / 5000) + ((step * 7919) % 1000) / 20000


GENERATOR_SOURCE = textwrap.dedent(f"""
    def param_value(i, j):
        if j == 0:
            return ["0.1", "0.01", "0.001"][i % 3]
        if j == 1:
            return ["adam", "sgd", "rmsprop"][(i // 3) % 3]
        return str((i * (j + 3)) % 97)

    def metric_value(i, j):
        return ((i * (j + 7) * 2654435761) % 10007) / 10007

    def long_value(step):
        return 2.0 / (1 + step / 5000) + ((step * 7919) % 1000) / 20000

    N_PARAMS, N_METRICS, BASE_MS, LONG_KEY = {N_PARAMS}, {N_METRICS}, {BASE_MS}, {LONG_KEY!r}
""")


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up: connection, caches, template loading
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# --- Steward ------------------------------------------------------------------------------------------


def steward_setup(sqlite: bool, workdir: Path, reuse: bool = False) -> None:
    if sqlite:
        url = f"sqlite:///{workdir / 'steward.sqlite3'}"
    elif reuse:
        url = f"{PG}/{PG_DB}"
    else:
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {PG_DB}"],
            check=True,
        )
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {PG_DB}"], check=True
        )
        url = f"{PG}/{PG_DB}"
    os.environ.update(
        {
            "DATABASE_URL": url,
            "STEWARD_VAR_DIR": str(workdir),
            "SECRET_KEY": "bench-only",
            "DJANGO_SETTINGS_MODULE": "mlplatform.settings",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _copy(table: str, columns: list[str], rows) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)
                    batch = []
            if batch:
                cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", batch)


def steward_seed(n_runs: int, n_points: int) -> dict:
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from accounts import services as account_services
    from experiments import services
    from experiments.models import Experiment, LatestMetric, Metric, Param, Run
    from experiments.services import MetricPoint

    user = get_user_model().objects.create_user("bench", password="bench-Steward-1")
    project = account_services.project_create(user=user, slug="bench", name="Bench")
    experiment = Experiment.objects.create(project=project, name="ui-bench", created_by=user)
    ids = [uuid.uuid4() for _ in range(n_runs)]
    key = (lambda u: u.hex) if connection.vendor == "sqlite" else (lambda u: u)
    start = dt.datetime.fromtimestamp(BASE_MS / 1000, tz=dt.UTC)
    with transaction.atomic():
        Run.objects.bulk_create(
            [
                Run(
                    id=ids[i],
                    experiment=experiment,
                    project=project,
                    name=f"run-{i:05d}",
                    status="FINISHED",
                    start_time=start + dt.timedelta(seconds=i),
                    end_time=start + dt.timedelta(seconds=i + 60 + i % 300),
                    author=user,
                    seed=i,
                    git_commit=f"{i:040x}",
                    git_dirty=bool(i % 2),
                )
                for i in range(n_runs)
            ],
            batch_size=2000,
        )
        _copy(
            Param._meta.db_table,
            ["run_id", "key", "value"],
            ((key(ids[i]), f"p{j}", param_value(i, j)) for i in range(n_runs) for j in range(N_PARAMS)),
        )
        metric_rows = [
            (key(ids[i]), f"m{j}", metric_value(i, j), 100, BASE_MS + i * 1000)
            for i in range(n_runs)
            for j in range(N_METRICS)
        ]
        columns = ["run_id", "key", "value", "step", "timestamp"]
        _copy(LatestMetric._meta.db_table, columns, metric_rows)
        _copy(Metric._meta.db_table, columns, metric_rows)
    # The long series lives on run 0, which also has its 10 params and 10 metrics. It goes through
    # the ingestion service, as an SDK's batches would, so the rollups that serve its charts exist.
    long_run = Run.objects.get(pk=ids[0])
    batch = 50_000
    for first in range(0, n_points, batch):
        services.metrics_log(
            run=long_run,
            points=[
                MetricPoint(LONG_KEY, long_value(s), s, BASE_MS + s * 100)
                for s in range(first, min(n_points, first + batch))
            ],
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"user": user, "project": project, "experiment": experiment, "long_run": ids[0]}


def steward_seeded() -> dict:
    """The objects a previous run of this script seeded (for --reuse)."""
    from django.contrib.auth import get_user_model

    from accounts.models import Project
    from experiments.models import Experiment, Metric

    project = Project.objects.get(slug="bench")
    return {
        "user": get_user_model().objects.get(username="bench"),
        "project": project,
        "experiment": Experiment.objects.get(project=project, name="ui-bench"),
        "long_run": Metric.objects.filter(key=LONG_KEY).values_list("run_id", flat=True).first(),
    }


def steward_measure(seeded: dict, repeat: int) -> dict[str, float]:
    from django.test import Client

    client = Client()
    client.force_login(seeded["user"])
    exp_url = f"/p/{seeded['project'].slug}/e/{seeded['experiment'].pk}/"
    run_id = seeded["long_run"]

    def get(url, params=None, expect=200):
        def call():
            response = client.get(url, params or {})
            assert response.status_code == expect, (url, response.status_code)
            return response

        return call

    first = get(exp_url, {"page_size": PAGE})()
    assert first.content.count(b"data-run-id=") == PAGE
    filtered = get(exp_url, {"page_size": PAGE, "filter": FILTER, "order_by": ORDER_BY})()
    assert b"filter-error" not in filtered.content and b"data-run-id=" in filtered.content
    chart = get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": LONG_KEY, "max_points": CHART_POINTS})()
    body = chart.json()
    assert body["downsampled"] and 0 < len(body["points"]) <= CHART_POINTS, len(body["points"])
    return {
        "runs table (first page of 100)": median_ms(get(exp_url, {"page_size": PAGE}), repeat),
        "filter + sort (first 100)": median_ms(
            get(exp_url, {"page_size": PAGE, "filter": FILTER, "order_by": ORDER_BY}), repeat
        ),
        "run page": median_ms(get(f"/runs/{run_id}/"), repeat),
        "chart data (long metric -> 1,500)": median_ms(
            get(f"/api/v1/runs/{run_id}/metrics/history/", {"key": LONG_KEY, "max_points": CHART_POINTS}),
            repeat,
        ),
    }


def browser_draw_ms(seeded: dict, workdir: Path, repeat: int) -> float | str:
    """Median time, in Chromium, from the run page asking for the long metric to its chart drawn."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "not measured: playwright is not installed"
    if not Path("/usr/bin/chromium").exists():
        return "not measured: /usr/bin/chromium is missing (scripts/ensure-chromium.sh)"
    port = free_port()
    log = open(workdir / "steward-server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            deadline = time.monotonic() + 60
            while True:
                try:
                    page.goto(f"{base}/accounts/login/")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", "bench-Steward-1")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            times = []
            for _ in range(repeat + 1):
                page.goto(f"{base}/runs/{seeded['long_run']}/")
                chart = page.locator(f".chart[data-metric-key='{LONG_KEY}']")
                chart.and_(page.locator("[data-chart-state=drawn]")).wait_for(timeout=60_000)
                times.append(float(chart.get_attribute("data-draw-ms")))
            browser.close()
        return statistics.median(times[1:])
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


# --- MLflow -------------------------------------------------------------------------------------------


MLFLOW_SEED = GENERATOR_SOURCE + textwrap.dedent("""
    import json, sys, uuid
    from sqlalchemy import insert
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.store.tracking.dbmodels import models as m

    db_uri, artifacts, n_runs, n_points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = SqlAlchemyStore(db_uri, artifacts)
    exp_id = store.create_experiment("ui-bench")
    ids = [uuid.uuid4().hex for _ in range(n_runs)]

    def chunks(rows, size=50_000):
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    with store.engine.begin() as conn:
        conn.execute(insert(m.SqlRun.__table__), [dict(
            run_uuid=ids[i], name=f"run-{i:05d}", source_type="LOCAL", source_name="", entry_point_name="",
            user_id="bench", status="FINISHED", start_time=BASE_MS + i * 1000,
            end_time=BASE_MS + (i + 60 + i % 300) * 1000, source_version=f"{i:040x}"[:50],
            lifecycle_stage="active", artifact_uri=f"{artifacts}/{ids[i]}", experiment_id=int(exp_id),
        ) for i in range(n_runs)])
        conn.execute(insert(m.SqlTag.__table__), [
            dict(key="mlflow.runName", value=f"run-{i:05d}", run_uuid=ids[i]) for i in range(n_runs)])
        for batch in chunks(dict(key=f"p{j}", value=param_value(i, j), run_uuid=ids[i])
                            for i in range(n_runs) for j in range(N_PARAMS)):
            conn.execute(insert(m.SqlParam.__table__), batch)
        rows = [dict(key=f"m{j}", value=metric_value(i, j), timestamp=BASE_MS + i * 1000, step=100,
                     is_nan=False, run_uuid=ids[i]) for i in range(n_runs) for j in range(N_METRICS)]
        for batch in chunks(rows):
            conn.execute(insert(m.SqlMetric.__table__), batch)
            conn.execute(insert(m.SqlLatestMetric.__table__), batch)
        for batch in chunks(dict(key=LONG_KEY, value=long_value(s), timestamp=BASE_MS + s * 100, step=s,
                                 is_nan=False, run_uuid=ids[0]) for s in range(n_points)):
            conn.execute(insert(m.SqlMetric.__table__), batch)
        last = n_points - 1
        conn.execute(insert(m.SqlLatestMetric.__table__), [dict(
            key=LONG_KEY, value=long_value(last), timestamp=BASE_MS + last * 100, step=last, is_nan=False,
            run_uuid=ids[0])])
    print(json.dumps({"experiment_id": str(exp_id), "long_run": ids[0]}))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_measure(workdir: Path, n_runs: int, n_points: int, repeat: int) -> dict[str, float] | str:
    import requests

    if not MLFLOW_PYTHON.exists():
        return f"MLflow not measured: {MLFLOW_PYTHON} is missing (see requirements-bench.txt)"
    db = workdir / "mlflow.db"
    script = workdir / "mlflow_seed.py"
    script.write_text(MLFLOW_SEED)
    started = time.monotonic()
    out = subprocess.run(
        [
            str(MLFLOW_PYTHON),
            str(script),
            f"sqlite:///{db}",
            str(workdir / "mlartifacts"),
            str(n_runs),
            str(n_points),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    seeded = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  MLflow seeded in {time.monotonic() - started:.0f} s", flush=True)
    port = free_port()
    log = open(workdir / "mlflow-server.log", "w")
    server = subprocess.Popen(
        [
            str(MLFLOW_PYTHON.parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(workdir / "mlartifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE="true"),
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                session.get(base + "/health", timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("mlflow server did not start; see mlflow-server.log") from None
                time.sleep(0.5)
        exp, run_id = seeded["experiment_id"], seeded["long_run"]

        def post(path, body, check=None):
            def call():
                response = session.post(base + path, json=body, timeout=600)
                response.raise_for_status()
                data = response.json()
                if check:
                    check(data)
                return data

            return call

        def get(path, params):
            def call():
                response = session.get(base + path, params=params, timeout=600)
                response.raise_for_status()
                return response.json()

            return call

        def full_history():
            points, token = 0, None
            while True:
                params = {"run_id": run_id, "metric_key": LONG_KEY, "max_results": 25_000}
                if token:
                    params["page_token"] = token
                data = get("/api/2.0/mlflow/metrics/get-history", params)()
                points += len(data.get("metrics", []))
                token = data.get("next_page_token")
                if not token:
                    return points

        first = post(
            "/ajax-api/2.0/mlflow/runs/search",
            {"experiment_ids": [exp], "max_results": PAGE, "order_by": ["attributes.start_time DESC"]},
        )
        filtered = post(
            "/ajax-api/2.0/mlflow/runs/search",
            {"experiment_ids": [exp], "max_results": PAGE, "filter": FILTER, "order_by": [ORDER_BY]},
        )
        assert len(first()["runs"]) == PAGE and filtered()["runs"]
        interval = get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            {"run_ids": run_id, "metric_key": LONG_KEY, "max_results": CHART_POINTS},
        )
        n_interval = len(interval()["metrics"])
        results = {
            "runs table (first page of 100)": median_ms(first, repeat),
            "filter + sort (first 100)": median_ms(filtered, repeat),
            "run page": median_ms(get("/api/2.0/mlflow/runs/get", {"run_id": run_id}), repeat),
            "chart data (long metric -> 1,500)": median_ms(interval, repeat),
        }
        started = time.perf_counter()
        total = full_history()
        results["(full history, all points once)"] = (time.perf_counter() - started) * 1000
        print(
            f"  MLflow bulk-interval returned {n_interval} points; full history {total:,} points", flush=True
        )
        return results
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="Steward on a fresh SQLite file, not PostgreSQL"
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"measure the PostgreSQL database {PG_DB} a previous run seeded, without seeding",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    try:
        print(
            f"Seeding Steward ({'SQLite' if args.sqlite else 'PostgreSQL'}): {args.runs:,} runs x "
            f"{N_PARAMS} params x {N_METRICS} metrics, one {args.points:,}-point metric",
            flush=True,
        )
        reuse = args.reuse and not args.sqlite
        steward_setup(args.sqlite, workdir, reuse=reuse)
        started = time.monotonic()
        seeded = steward_seeded() if reuse else steward_seed(args.runs, args.points)
        print(
            f"  Steward {'reused' if reuse else 'seeded'} in {time.monotonic() - started:.0f} s", flush=True
        )
        steward = steward_measure(seeded, args.repeat)
        draw = browser_draw_ms(seeded, workdir, min(args.repeat, 5))
        points_label = f"{args.points:,}-point metric"
        mlflow: dict | str = "not measured (--no-mlflow)"
        if not args.no_mlflow:
            print("Seeding MLflow (SQLite) with the same data", flush=True)
            mlflow = mlflow_measure(workdir, args.runs, args.points, args.repeat)

        print()
        print(f"Median server time over {args.repeat} requests, ms (Steward target <= {TARGET_MS:.0f} ms)")
        print(f"{'request':<36} {'Steward':>10} {'MLflow':>10}  Steward within target")
        for name, value in steward.items():
            other = mlflow.get(name) if isinstance(mlflow, dict) else None
            other_text = f"{other:>10.1f}" if other is not None else f"{'-':>10}"
            print(f"{name:<36} {value:>10.1f} {other_text}  {'yes' if value <= TARGET_MS else 'NO'}")
        if isinstance(mlflow, dict) and "(full history, all points once)" in mlflow:
            print(
                f"{'MLflow full get-history (1M points)':<36} {'-':>10} "
                f"{mlflow['(full history, all points once)']:>10.1f}  (one request chain, not a median)"
            )
        if isinstance(mlflow, str):
            print(mlflow)
        if isinstance(draw, float):
            print(
                f"Chromium, run page: {points_label} fetched and drawn in {draw:.0f} ms (median; "
                "from the chart's request to Plotly done, beside the run's 10 other charts)"
            )
        else:
            print(f"Chromium draw time {draw}")
    finally:
        if args.keep:
            print(f"Working folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
