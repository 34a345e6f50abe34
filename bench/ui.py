"""Response time of the web UI's heaviest requests, next to MLflow doing the same on the same data.

Run by hand (not in CI):

    make bench-deps                         # MLflow in its own .venv-bench
    .venv/bin/python bench/ui.py            # both on fresh PostgreSQL databases (*_uibench)
    .venv/bin/python bench/ui.py --sqlite   # both on fresh SQLite files

Seeds one experiment with 10,000 runs (10 params, 10 metrics each) and one run
holding a 1,000,000-point metric, then times (median of --repeat requests after
one warm-up):

  runs table       the experiment page, first page of 100 runs
  filter + sort    the same page with `metrics.m0 > 0.5 and params.p1 = 'adam'`, sorted by metrics.m1 DESC
  run page         the run page of the run with the long metric
  chart data       that metric's history downsampled to 1,500 points (what the chart asks for)

Both servers are timed the same way: over HTTP on one keep-alive connection,
each with one worker process (Steward under gunicorn, `mlflow server
--workers 1`), each on its own database of the same kind (PostgreSQL, or
SQLite with --sqlite). Steward serves its pages (the server renders the
HTML: middleware, session, permission checks, queries, templates) as a
logged-in browser asks for them. MLflow's UI renders in the browser, so it is
timed on the API calls its UI makes for the same views: runs/search (100
runs), the same search filtered and sorted, runs/get, and
metrics/get-history-bulk-interval (the UI's downsampled chart call, 320
points by default; asked for 1,500 here), plus one full get-history of the
long metric.

Outputs checked: both runs tables list the same 100 runs in the same order
(the newest first), both filtered tables exactly the 100 runs the filter and
sort select from the seeded data; the run page shows the run's name and
params; every chart point is a point of the seeded series.
Target for Steward: each <= 300 ms median.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Table, print_load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
PG_DB = "steward_uibench"
MLFLOW_PG_DB = "mlflow_uibench"
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


# What each view must show, computed from the seeded data.
def expected_first_page(n_runs: int) -> list[str]:
    return [f"run-{i:05d}" for i in reversed(range(n_runs))][:PAGE]


def expected_filtered(n_runs: int) -> list[str]:
    chosen = [i for i in range(n_runs) if metric_value(i, 0) > 0.5 and param_value(i, 1) == "adam"]
    chosen.sort(key=lambda i: metric_value(i, 1), reverse=True)
    return [f"run-{i:05d}" for i in chosen[:PAGE]]


def check_series(points: list[tuple[int, float]], label: str) -> int:
    assert 0 < len(points) <= CHART_POINTS, f"{label}: {len(points)} chart points"
    for step, value in points:
        assert value == long_value(int(step)), f"{label}: ({step}, {value}) is not a point of the series"
    return len(points)


def fresh_pg_database(name: str) -> None:
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)


# --- Steward ------------------------------------------------------------------------------------------


def steward_setup(sqlite: bool, workdir: Path, reuse: bool = False) -> None:
    if sqlite:
        url = f"sqlite:///{workdir / 'steward.sqlite3'}"
    elif reuse:
        url = f"{PG}/{PG_DB}"
    else:
        fresh_pg_database(PG_DB)
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
    return {"user": user, "project": project, "experiment": experiment, "long_run": ids[0],
            "points": n_points}


def steward_seeded() -> dict:
    """The objects a previous run of this script seeded (for --reuse)."""
    from django.contrib.auth import get_user_model

    from accounts.models import Project
    from experiments.models import Experiment, Metric

    project = Project.objects.get(slug="bench")
    long_run = Metric.objects.filter(key=LONG_KEY).values_list("run_id", flat=True).first()
    return {
        "user": get_user_model().objects.get(username="bench"),
        "project": project,
        "experiment": Experiment.objects.get(project=project, name="ui-bench"),
        "long_run": long_run,
        "points": Metric.objects.filter(run_id=long_run, key=LONG_KEY).count(),
    }


def steward_serve(workdir: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn on the seeded database, one sync worker: as bench/ingest.py runs it."""
    port = free_port()
    log = open(workdir / "steward-server.log", "w")  # noqa: SIM115 - the server writes to it until it stops
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "mlplatform.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
         "--timeout", "600", "--log-level", "warning", "--no-control-socket"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", server)
    return server, base


def wait_http(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"{url} did not answer; see the server's log") from None
            time.sleep(0.5)


def steward_measure(seeded: dict, base: str, repeat: int) -> dict[str, float]:
    import requests
    from django.conf import settings
    from django.test import Client

    from experiments.models import Run

    # A logged-in browser's session cookie, made by Django's own login.
    login = Client()
    login.force_login(seeded["user"])
    session = requests.Session()
    session.cookies.set(settings.SESSION_COOKIE_NAME, login.cookies[settings.SESSION_COOKIE_NAME].value)
    names = {str(pk): name for pk, name in
             Run.objects.filter(experiment=seeded["experiment"]).values_list("pk", "name")}
    n_runs = len(names)
    exp_url = f"{base}/p/{seeded['project'].slug}/e/{seeded['experiment'].pk}/"
    run_id = seeded["long_run"]

    def get(url, params=None):
        def call():
            response = session.get(url, params=params or {}, timeout=600, allow_redirects=False)
            assert response.status_code == 200, (url, response.status_code)
            return response

        return call

    def listed(response) -> list[str]:
        return [names[str(uuid.UUID(i))] for i in re.findall(r'data-run-id="([^"]+)"', response.text)]

    assert listed(get(exp_url, {"page_size": PAGE})()) == expected_first_page(n_runs), "Steward runs table"
    filtered = get(exp_url, {"page_size": PAGE, "filter": FILTER, "order_by": ORDER_BY})()
    assert listed(filtered) == expected_filtered(n_runs), "Steward filtered runs table"
    page = get(f"{base}/runs/{run_id}/")().text
    assert "run-00000" in page and all(f"p{j}" in page for j in range(N_PARAMS)), "Steward run page"
    chart = get(f"{base}/api/v1/runs/{run_id}/metrics/history/",
                {"key": LONG_KEY, "max_points": CHART_POINTS})().json()
    assert chart["downsampled"]
    check_series([(p["step"], p["value"]) for p in chart["points"]], "Steward chart")
    started = time.perf_counter()
    total = len(get(f"{base}/api/v1/runs/{run_id}/metrics/history/", {"key": LONG_KEY})().json()["points"])
    full_ms = (time.perf_counter() - started) * 1000
    assert total == seeded["points"], f"Steward full history: {total} points"
    base_url = base
    results = {
        "runs table (first page of 100)": median_ms(get(exp_url, {"page_size": PAGE}), repeat),
        "filter + sort (first 100)": median_ms(
            get(exp_url, {"page_size": PAGE, "filter": FILTER, "order_by": ORDER_BY}), repeat
        ),
        "run page": median_ms(get(f"{base_url}/runs/{run_id}/"), repeat),
        "chart data (long metric -> 1,500)": median_ms(
            get(f"{base_url}/api/v1/runs/{run_id}/metrics/history/",
                {"key": LONG_KEY, "max_points": CHART_POINTS}),
            repeat,
        ),
    }
    results["full history, all points (once)"] = full_ms
    return results


def browser_draw_ms(seeded: dict, base: str, repeat: int) -> float | str:
    """Median time, in Chromium, from the run page asking for the long metric to its chart drawn."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "not measured: playwright is not installed"
    if not Path("/usr/bin/chromium").exists():
        return "not measured: /usr/bin/chromium is missing (scripts/ensure-chromium.sh)"
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


def mlflow_measure(workdir: Path, n_runs: int, n_points: int, repeat: int, sqlite: bool
                   ) -> dict[str, float] | str:
    import requests

    if not MLFLOW_PYTHON.exists():
        return f"MLflow not measured: {MLFLOW_PYTHON} is missing (see requirements-bench.txt)"
    if sqlite:
        store = f"sqlite:///{workdir / 'mlflow.db'}"
    else:
        fresh_pg_database(MLFLOW_PG_DB)
        store = f"postgresql://postgres@127.0.0.1:5432/{MLFLOW_PG_DB}"
    script = workdir / "mlflow_seed.py"
    script.write_text(MLFLOW_SEED)
    started = time.monotonic()
    out = subprocess.run(
        [
            str(MLFLOW_PYTHON),
            str(script),
            store,
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
            store,
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
        assert [r["info"]["run_name"] for r in first()["runs"]] == expected_first_page(n_runs), "MLflow runs"
        found = [r["info"]["run_name"] for r in filtered()["runs"]]
        assert found == expected_filtered(n_runs), "MLflow filtered runs"
        run = get("/api/2.0/mlflow/runs/get", {"run_id": run_id})()["run"]
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert run["info"]["run_name"] == "run-00000", "MLflow run"
        assert params == {f"p{j}": param_value(0, j) for j in range(N_PARAMS)}, "MLflow run params"
        interval = get(
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
            {"run_ids": run_id, "metric_key": LONG_KEY, "max_results": CHART_POINTS},
        )
        n_interval = check_series([(p["step"], p["value"]) for p in interval()["metrics"]], "MLflow chart")
        results = {
            "runs table (first page of 100)": median_ms(first, repeat),
            "filter + sort (first 100)": median_ms(filtered, repeat),
            "run page": median_ms(get("/api/2.0/mlflow/runs/get", {"run_id": run_id}), repeat),
            "chart data (long metric -> 1,500)": median_ms(interval, repeat),
        }
        started = time.perf_counter()
        total = full_history()
        results["full history, all points (once)"] = (time.perf_counter() - started) * 1000
        assert total == n_points, f"MLflow full history: {total} points"
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


CHECKS = {
    "runs table (first page of 100)": "same 100 runs, same order",
    "filter + sort (first 100)": "= the 100 the data selects, in order",
    "run page": "name and params shown",
    "chart data (long metric -> 1,500)": "each point one of the series",
    "full history, all points (once)": "every point",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite", action="store_true", help="fresh SQLite files, not PostgreSQL databases")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"measure the PostgreSQL database {PG_DB} a previous run seeded, without seeding Steward",
    )
    args = parser.parse_args()
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print_load("before")

    workdir = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    try:
        print(
            f"Seeding Steward ({backend}): {args.runs:,} runs x "
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
        server, base = steward_serve(workdir)
        try:
            steward = steward_measure(seeded, base, args.repeat)
            draw = browser_draw_ms(seeded, base, min(args.repeat, 5))
        finally:
            server.terminate()
            server.wait(timeout=20)
        mlflow: dict | str = "not measured (--no-mlflow)"
        if not args.no_mlflow:
            print(f"Seeding MLflow ({backend}) with the same data", flush=True)
            mlflow = mlflow_measure(workdir, args.runs, args.points, args.repeat, args.sqlite)
        print_load("after")

        table = Table(f"Median response time over {args.repeat} requests, one worker each, {backend}, "
                      f"HTTP (Steward target <= {TARGET_MS:.0f} ms)")
        for name, value in steward.items():
            values = {"Steward": value}
            if isinstance(mlflow, dict) and name in mlflow:
                values["MLflow"] = mlflow[name]
            table.add(name, "ms", values, higher_is_better=False, checked=CHECKS[name])
        table.print()
        for name, value in steward.items():
            if value > TARGET_MS and not name.startswith("full history"):
                print(f"Steward over target: {name} {value:.0f} ms")
        if isinstance(mlflow, str):
            print(mlflow)
        if isinstance(draw, float):
            print(
                f"Chromium, run page: {args.points:,}-point metric fetched and drawn in {draw:.0f} ms "
                "(median; from the chart's request to Plotly done, beside the run's 10 other charts)"
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
