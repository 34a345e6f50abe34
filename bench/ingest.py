"""Tracking-server throughput: Steward against an MLflow tracking server, side by side.

Run by hand (not in CI):

    make bench-deps                              # MLflow in its own .venv-bench
    .venv/bin/python bench/ingest.py            # fresh SQLite files
    .venv/bin/python bench/ingest.py --postgres # fresh PostgreSQL databases
    .venv/bin/python bench/ingest.py --mlflow-client  # + the MLflow client to both servers

Both servers run at the same time with one worker process each (Steward under
gunicorn, MLflow with ``--workers 1``, its fastest here), each on its own fresh
database of the same kind, and both are spoken to the same way: plain REST
over one keep-alive HTTP connection. Each server gets the same data: every
value comes from a random generator seeded the same for each server. Every
measure is repeated (``--repeats``, 3 by default), the two servers taking
turns in alternating order, so a busy moment of the shared machine hits both;
the table shows the median and the spread of the repeats.

Measures: runs created one by one (as a sweep or a notebook makes many short
runs), and the server CPU each cost (its processes, plus its PostgreSQL
backends with --postgres): a figure that moves little when other work shares
the machine, unlike the rates; metric points/s for 200,000 points in batches of 1,000; seconds to read
one 100,000-point history in full and downsampled to 1,000 points; median
latency of a search over 5,000 runs (metric + param filter, sorted by a metric,
page of 100); artifact MB/s for 50 MB up and down.

What each answer is checked against: the created runs read back with their
name and tags; the full history equals the points sent, and every downsampled
point is one of them; the search page is exactly the 100 runs the filter and
sort select from the data sent, in order; the downloaded artifact has the
uploaded bytes' sha256.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Table, print_load  # noqa: E402
from servers import mlflow_server, steward_server  # noqa: E402

SEED = 7
POINTS = 200_000
BATCH = 1_000
SEARCH_RUNS = 5_000
SEARCH_REPEATS = 20
ARTIFACT_MB = 50
CREATE_RUNS = 500
# What MLflow's client tags a new run with (user, source, commit); each server gets the same.
RUN_TAGS = {"mlflow.user": "bench", "mlflow.source.name": "train.py", "mlflow.source.type": "LOCAL",
            "mlflow.source.git.commit": "0123456789abcdef0123456789abcdef01234567"}
FILTER = "metrics.acc > 0.5 and params.model = 'rf'"
ORDER_BY = "metrics.acc DESC"


class Steward:
    name = "Steward"

    def __init__(self, url: str, token: str):
        self.url = url
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def create_run(self, experiment: str, name: str = "", tags: dict[str, str] | None = None) -> str:
        # The body the SDK sends: a client-chosen id makes the create safe to retry.
        r = self.s.post(f"{self.url}/api/v1/projects/bench/runs/",
                        json={"experiment": experiment, "id": str(uuid.uuid4()), "name": name,
                              "start_time": int(time.time() * 1000), "tags": tags or {}})
        r.raise_for_status()
        return r.json()["id"]

    def get_run(self, run_id: str) -> tuple[str, dict[str, str]]:
        r = self.s.get(f"{self.url}/api/v1/runs/{run_id}/")
        r.raise_for_status()
        body = r.json()
        return body["name"], body["tags"]

    def log_batch(self, run_id: str, metrics: list[dict], params: list[dict] | None = None) -> None:
        r = self.s.post(f"{self.url}/api/v1/runs/{run_id}/batch/",
                        json={"metrics": metrics, "params": params or []},
                        headers={"Idempotency-Key": os.urandom(12).hex()})
        r.raise_for_status()

    def history(self, run_id: str, key: str, max_points: int | None = None) -> list[tuple[int, float]]:
        params = {"key": key}
        if max_points:
            params["max_points"] = max_points
        r = self.s.get(f"{self.url}/api/v1/runs/{run_id}/metrics/history/", params=params)
        r.raise_for_status()
        return [(p["step"], p["value"]) for p in r.json()["points"]]

    def search(self, experiment: str) -> list[str]:
        r = self.s.get(f"{self.url}/api/v1/projects/bench/runs/search/",
                       params={"experiment": experiment, "filter": FILTER, "order_by": ORDER_BY,
                               "max_results": 100})
        r.raise_for_status()
        return [run["name"] for run in r.json()["runs"]]

    def upload(self, run_id: str, path: str, data: bytes) -> None:
        r = self.s.put(f"{self.url}/api/v1/runs/{run_id}/artifacts/{path}", data=data,
                       headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()

    def download(self, run_id: str, path: str) -> str:
        with self.s.get(f"{self.url}/api/v1/runs/{run_id}/artifacts/{path}", stream=True) as r:
            r.raise_for_status()
            return _sha256(r)


class MLflow:
    name = "MLflow"

    def __init__(self, url: str):
        self.url = url
        self.s = requests.Session()
        self.experiments: dict[str, str] = {}

    def _experiment(self, name: str) -> str:
        # Looked up once, as MLflow's client does after set_experiment.
        if name not in self.experiments:
            r = self.s.post(f"{self.url}/api/2.0/mlflow/experiments/create", json={"name": name})
            r.raise_for_status()
            self.experiments[name] = r.json()["experiment_id"]
        return self.experiments[name]

    def create_run(self, experiment: str, name: str = "", tags: dict[str, str] | None = None) -> str:
        r = self.s.post(f"{self.url}/api/2.0/mlflow/runs/create",
                        json={"experiment_id": self._experiment(experiment), "run_name": name,
                              "start_time": int(time.time() * 1000),
                              "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]})
        r.raise_for_status()
        return r.json()["run"]["info"]["run_id"]

    def get_run(self, run_id: str) -> tuple[str, dict[str, str]]:
        r = self.s.get(f"{self.url}/api/2.0/mlflow/runs/get", params={"run_id": run_id})
        r.raise_for_status()
        run = r.json()["run"]
        tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        tags.pop("mlflow.runName", None)  # MLflow keeps the run's name as a tag too
        return run["info"]["run_name"], tags

    def log_batch(self, run_id: str, metrics: list[dict], params: list[dict] | None = None) -> None:
        r = self.s.post(f"{self.url}/api/2.0/mlflow/runs/log-batch",
                        json={"run_id": run_id, "metrics": metrics, "params": params or []})
        r.raise_for_status()

    def history(self, run_id: str, key: str, max_points: int | None = None) -> list[tuple[int, float]]:
        if max_points:
            # What MLflow's own UI calls for a sampled chart.
            r = self.s.get(f"{self.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                           params={"run_ids": run_id, "metric_key": key, "max_results": max_points})
            r.raise_for_status()
            return [(int(p["step"]), p["value"]) for p in r.json().get("metrics", [])]
        points, token = [], None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
            if token:
                params["page_token"] = token
            r = self.s.get(f"{self.url}/api/2.0/mlflow/metrics/get-history", params=params)
            r.raise_for_status()
            body = r.json()
            points.extend((int(p["step"]), p["value"]) for p in body.get("metrics", []))
            token = body.get("next_page_token")
            if not token:
                return points

    def search(self, experiment: str) -> list[str]:
        r = self.s.post(f"{self.url}/api/2.0/mlflow/runs/search",
                        json={"experiment_ids": [self._experiment(experiment)], "filter": FILTER,
                              "order_by": [ORDER_BY], "max_results": 100})
        r.raise_for_status()
        return [run["info"]["run_name"] for run in r.json().get("runs", [])]

    def _artifact_url(self, run_id: str, path: str) -> str:
        return f"{self.url}/api/2.0/mlflow-artifacts/artifacts/bench/{run_id}/artifacts/{path}"

    def upload(self, run_id: str, path: str, data: bytes) -> None:
        r = self.s.put(self._artifact_url(run_id, path), data=data,
                       headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()

    def download(self, run_id: str, path: str) -> str:
        with self.s.get(self._artifact_url(run_id, path), stream=True) as r:
            r.raise_for_status()
            return _sha256(r)


class MlflowClientDriver:
    """The same workload through MLflow's own client (``MlflowClient``: its validation, its
    request bodies, its retries), pointed at a server by its tracking URI. Against Steward that
    URI is ``<url>/mlflow/bench``, the project's MLflow-compatible endpoints.

    MLflow's client has no call for a downsampled history, so that row has no figure here.
    """

    sampled_history = False

    def __init__(self, name: str, tracking_uri: str, token: str = ""):
        from mlflow import MlflowClient

        if token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = token  # read per request; MLflow's server ignores it
        self.name = name
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiments: dict[str, str] = {}
        self.workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-mlflow-client-{os.getpid()}"
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        # Its own experiments: it shares each server with the REST client's measures.
        name = f"mlflow-client-{name}"
        if name not in self.experiments:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                try:
                    self.experiments[name] = self.client.create_experiment(name)
                except MlflowException:  # another seeding thread created it first
                    self.experiments[name] = self.client.get_experiment_by_name(name).experiment_id
            else:
                self.experiments[name] = found.experiment_id
        return self.experiments[name]

    def create_run(self, experiment: str, name: str = "", tags: dict[str, str] | None = None) -> str:
        run = self.client.create_run(self._experiment(experiment), run_name=name, tags=tags or {})
        return run.info.run_id

    def get_run(self, run_id: str) -> tuple[str, dict[str, str]]:
        run = self.client.get_run(run_id)
        tags = dict(run.data.tags)
        tags.pop("mlflow.runName", None)
        return run.info.run_name, tags

    def log_batch(self, run_id: str, metrics: list[dict], params: list[dict] | None = None) -> None:
        from mlflow.entities import Metric, Param

        self.client.log_batch(
            run_id,
            metrics=[Metric(m["key"], m["value"], m["timestamp"], m["step"]) for m in metrics],
            params=[Param(p["key"], p["value"]) for p in params or []],
            synchronous=True,
        )

    def history(self, run_id: str, key: str, max_points: int | None = None) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def search(self, experiment: str) -> list[str]:
        runs = self.client.search_runs([self._experiment(experiment)], FILTER, order_by=[ORDER_BY],
                                       max_results=100)
        return [run.info.run_name for run in runs]

    def upload(self, run_id: str, path: str, data: bytes) -> None:
        local = self.workdir / os.path.basename(path)
        local.write_bytes(data)
        try:
            self.client.log_artifact(run_id, str(local), artifact_path=os.path.dirname(path) or None)
        finally:
            local.unlink()

    def download(self, run_id: str, path: str) -> str:
        local = Path(self.client.download_artifacts(run_id, path, dst_path=str(self.workdir)))
        try:
            digest = hashlib.sha256()
            with local.open("rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest()
        finally:
            local.unlink()


def _sha256(response: requests.Response) -> str:
    digest = hashlib.sha256()
    for chunk in response.iter_content(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def pg_analyze(database: str) -> None:
    """What autovacuum does within a minute of a bulk load: fresh table statistics for the planner."""
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qc", "ANALYZE"],
                   check=True)


def ingest_batches(rng: random.Random, now: int) -> list[list[dict]]:
    """200,000 points in batches of 1,000: two keys of 100,000 steps each."""
    return [
        [{"key": "loss" if i % 2 == 0 else "acc", "value": rng.random(), "step": i // 2, "timestamp": now + i}
         for i in range(start, start + BATCH)]
        for start in range(0, POINTS, BATCH)
    ]


def search_data(rng: random.Random) -> list[tuple[str, float, str]]:
    """(run name, metric acc, param model) of the 5,000 searched runs."""
    return [(f"run-{i}", rng.random(), rng.choice(["rf", "lr", "gb"])) for i in range(SEARCH_RUNS - 1)]


def search_expected(rows: list[tuple[str, float, str]]) -> list[str]:
    chosen = [(acc, name) for name, acc, model in rows if acc > 0.5 and model == "rf"]
    return [name for _, name in sorted(chosen, reverse=True)[:100]]


class Bench:
    """One server's measures; ``repeat()`` runs each of them once more."""

    def __init__(self, client, server):
        self.client = client
        self.server = server
        self.database = server.database
        self.results: dict[str, list[float]] = {}
        self.now = int(time.time() * 1000)
        self.artifact_run = ""

    def add(self, measure: str, value: float) -> None:
        self.results.setdefault(measure, []).append(value)

    def seed_search(self) -> None:
        """5,000 runs with one metric and one param each, made by 4 threads (not timed)."""
        client, rows = self.client, search_data(random.Random(SEED))
        self.search_expected = search_expected(rows)

        def seed(row: tuple[str, float, str]) -> None:
            name, acc, model = row
            run_id = client.create_run("search", name)
            client.log_batch(run_id, [{"key": "acc", "value": acc, "step": 0, "timestamp": self.now}],
                             [{"key": "model", "value": model}])

        client.create_run("search", "first")  # creates the experiment before the threads race for it
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(seed, rows))
        print(f"  {client.name}: seeded {SEARCH_RUNS:,} runs in {time.perf_counter() - started:.0f} s "
              "(4 threads, not timed)", flush=True)
        if self.database:
            # Searched seconds after the bulk load, both planners would otherwise guess without statistics.
            pg_analyze(self.database)

    def repeat(self, r: int) -> None:
        client, name = self.client, self.client.name
        rng = random.Random(SEED + r)  # the same seed for each server: the same data

        # Runs created one by one, each with the tags MLflow's client sets.
        experiment = f"create-{r}"
        client.create_run(experiment, "warm-up")  # creates the experiment outside the timing
        cpu, started = self.server.cpu_seconds(), time.perf_counter()
        ids = [client.create_run(experiment, f"short-{i}", RUN_TAGS) for i in range(CREATE_RUNS)]
        self.add("create", CREATE_RUNS / (time.perf_counter() - started))
        self.add("create_cpu", (self.server.cpu_seconds() - cpu) * 1000 / CREATE_RUNS)
        for i in (0, CREATE_RUNS - 1):
            got = client.get_run(ids[i])
            assert got == (f"short-{i}", RUN_TAGS), f"{name} stored run {i} as {got}"

        # Ingest: 200,000 points in batches of 1,000.
        run_id = client.create_run("ingest", f"ingest-{r}")
        batches = ingest_batches(rng, self.now)
        # Where the time goes: the server's processes, and this process (the client's own work).
        cpu, client_cpu = self.server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        for metrics in batches:
            client.log_batch(run_id, metrics)
        self.add("ingest", POINTS / (time.perf_counter() - started))
        self.add("ingest_server_cpu", self.server.cpu_seconds() - cpu)
        self.add("ingest_client_cpu", time.process_time() - client_cpu)

        # History: the 100,000-point 'loss' series, in full and downsampled to 1,000 points.
        sent = [(p["step"], p["value"]) for batch in batches for p in batch if p["key"] == "loss"]
        cpu, client_cpu = self.server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        points = client.history(run_id, "loss")
        self.add("history_full", time.perf_counter() - started)
        self.add("history_server_cpu", self.server.cpu_seconds() - cpu)
        self.add("history_client_cpu", time.process_time() - client_cpu)
        assert sorted(points) == sent, f"{name}: the history read back is not the points sent"
        if getattr(client, "sampled_history", True):
            started = time.perf_counter()
            sampled = client.history(run_id, "loss", max_points=1_000)
            self.add("history_sampled", time.perf_counter() - started)
            assert 0 < len(sampled) <= 2_000, f"{name} returned {len(sampled)} sampled points"
            assert set(sampled) <= set(sent), f"{name}: a sampled point is not one of the points sent"

        # Search over the 5,000 seeded runs.
        timings = []
        for _ in range(SEARCH_REPEATS):
            started = time.perf_counter()
            found = client.search("search")
            timings.append(time.perf_counter() - started)
            assert found == self.search_expected, f"{name}: the search page is not the expected 100 runs"
        self.add("search", statistics.median(timings) * 1000)

        # Artifacts: 50 MB up and down.
        data = rng.randbytes(ARTIFACT_MB * 1024 * 1024)
        started = time.perf_counter()
        client.upload(run_id, f"big/blob-{r}.bin", data)
        self.add("upload", ARTIFACT_MB / (time.perf_counter() - started))
        started = time.perf_counter()
        digest = client.download(run_id, f"big/blob-{r}.bin")
        self.add("download", ARTIFACT_MB / (time.perf_counter() - started))
        assert digest == hashlib.sha256(data).hexdigest(), f"{name}: the artifact came back changed"
        summary = ", ".join(f"{k} {v[-1]:,.3g}" for k, v in self.results.items())
        print(f"  {name} repeat {r + 1}: {summary}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true",
                        help="fresh PostgreSQL databases instead of SQLite")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlflow-client", action="store_true",
                        help="also send the workload through MLflow's own client, to Steward's "
                             "MLflow-compatible endpoints and to MLflow's server (a second table)")
    parser.add_argument("--smoke", action="store_true",
                        help="a tenth of every size: checks that the script works, its figures mean little")
    args = parser.parse_args()
    if args.smoke:
        global POINTS, SEARCH_RUNS, ARTIFACT_MB, CREATE_RUNS
        POINTS, SEARCH_RUNS, ARTIFACT_MB, CREATE_RUNS = POINTS // 10, SEARCH_RUNS // 10, 5, CREATE_RUNS // 10
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print_load("before")
    with contextlib.ExitStack() as stack:
        steward_srv = stack.enter_context(steward_server(postgres=args.postgres))
        mlflow_srv = stack.enter_context(mlflow_server(postgres=args.postgres))
        benches = [Bench(Steward(steward_srv.url, steward_srv.token), steward_srv),
                   Bench(MLflow(mlflow_srv.url), mlflow_srv)]
        if args.mlflow_client:
            benches += [
                Bench(MlflowClientDriver(CLIENT_STEWARD, f"{steward_srv.url}/mlflow/bench",
                                         steward_srv.token), steward_srv),
                Bench(MlflowClientDriver(CLIENT_MLFLOW, mlflow_srv.url), mlflow_srv),
            ]
        for bench in benches:
            bench.seed_search()
        for r in range(args.repeats):
            for bench in benches if r % 2 == 0 else benches[::-1]:
                bench.repeat(r)
    print_load("after")
    st, ml = benches[0].results, benches[1].results
    table = Table(f"Tracking server, one worker each, {backend}, REST over HTTP")

    def add(measure, key, unit, higher, checked):
        table.add(measure, unit, {"Steward": st[key], "MLflow": ml[key]}, higher_is_better=higher,
                  checked=checked)

    k = f"{POINTS // 2 // 1000}k"
    add(f"create runs one by one ({CREATE_RUNS}, 4 tags each)", "create", "runs/s", True,
        "read back: name, tags")
    add("  server CPU per run created", "create_cpu", "ms", False,
        "+ its database's" if args.postgres else "(database in-process)")
    add(f"metric ingest, {POINTS // 1000}k points in batches of 1k", "ingest", "points/s", True,
        "see history")
    add(f"read {k}-point history, full", "history_full", "s", False, "= points sent")
    add(f"read {k}-point history, 1k points", "history_sampled", "s", False, "each one of the points sent")
    add(f"search {SEARCH_RUNS:,} runs, filter+sort, page of 100", "search", "ms (p50)", False,
        "= expected 100 runs, in order")
    add(f"artifact upload, {ARTIFACT_MB} MB", "upload", "MB/s", True, "see download")
    add(f"artifact download, {ARTIFACT_MB} MB", "download", "MB/s", True, "sha256 = uploaded")
    table.print()
    if args.mlflow_client:
        client_table(benches, backend, k).print()


CLIENT_STEWARD, CLIENT_MLFLOW = "client→Steward", "client→MLflow"


def client_table(benches: list, backend: str, k: str) -> Table:
    """The MLflow client's own calls: to Steward's compatible endpoints, to MLflow's server, and how
    the first compares with Steward's native API (the target: within 2x of it on every row). The CPU
    rows split ingest and history between the server and the client's own work in this process."""
    native, _, to_steward, to_mlflow = (b.results for b in benches)
    table = Table(f"The MLflow client, one worker each, {backend}", columns=(CLIENT_STEWARD, CLIENT_MLFLOW))
    rows = [
        (f"create runs one by one ({CREATE_RUNS}, 4 tags each)", "create", "runs/s", True),
        ("  server CPU per run created", "create_cpu", "ms", False),
        (f"metric ingest, {POINTS // 1000}k points in batches of 1k", "ingest", "points/s", True),
        ("  server CPU, ingest", "ingest_server_cpu", "s", False),
        ("  client CPU (this process), ingest", "ingest_client_cpu", "s", False),
        (f"read {k}-point history, full", "history_full", "s", False),
        ("  server CPU, history", "history_server_cpu", "s", False),
        ("  client CPU (this process), history", "history_client_cpu", "s", False),
        (f"search {SEARCH_RUNS:,} runs, filter+sort, page of 100", "search", "ms (p50)", False),
        (f"artifact upload, {ARTIFACT_MB} MB", "upload", "MB/s", True),
        (f"artifact download, {ARTIFACT_MB} MB", "download", "MB/s", True),
    ]
    for measure, key, unit, higher in rows:
        ours, theirs = statistics.median(to_steward[key]), statistics.median(native[key])
        vs_native = ours / theirs if higher else theirs / ours
        table.add(measure, unit, {CLIENT_STEWARD: to_steward[key], CLIENT_MLFLOW: to_mlflow[key]},
                  higher_is_better=higher,
                  checked=f"vs Steward native {_fmt(theirs)}: {vs_native:.2f}x")
    return table


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


if __name__ == "__main__":
    main()
