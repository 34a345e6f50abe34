"""Tracking-server throughput: Steward against an MLflow tracking server, side by side.

Run by hand (not in CI):

    make bench-deps                              # MLflow in its own .venv-bench
    .venv/bin/python bench/ingest.py            # fresh SQLite files
    .venv/bin/python bench/ingest.py --postgres # fresh PostgreSQL databases

Both servers run with one worker process on this machine. Measures: metric
points/s for 200,000 points in batches of 1,000; seconds to read one
100,000-point history in full and downsampled to 1,000 points; median latency
of a search over 5,000 runs (metric + param filter, sorted by a metric, page of
100); artifact MB/s for 50 MB up and down.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import mlflow_server, print_table, steward_server  # noqa: E402

POINTS = 200_000
BATCH = 1_000
HISTORY_POINTS = 100_000
SEARCH_RUNS = 5_000
SEARCH_REPEATS = 20
ARTIFACT_MB = 50


class Steward:
    def __init__(self, url: str, token: str):
        self.url = url
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def create_run(self, experiment: str, name: str = "") -> str:
        r = self.s.post(f"{self.url}/api/v1/projects/bench/runs/",
                        json={"experiment": experiment, "name": name})
        r.raise_for_status()
        return r.json()["id"]

    def log_batch(self, run_id: str, metrics: list[dict], params: list[dict] | None = None) -> None:
        r = self.s.post(f"{self.url}/api/v1/runs/{run_id}/batch/",
                        json={"metrics": metrics, "params": params or []},
                        headers={"Idempotency-Key": os.urandom(12).hex()})
        r.raise_for_status()

    def history(self, run_id: str, key: str, max_points: int | None = None) -> int:
        params = {"key": key}
        if max_points:
            params["max_points"] = max_points
        r = self.s.get(f"{self.url}/api/v1/runs/{run_id}/metrics/history/", params=params)
        r.raise_for_status()
        return len(r.json()["points"])

    def search(self, experiment: str, filter_string: str, order_by: str) -> int:
        r = self.s.get(f"{self.url}/api/v1/projects/bench/runs/search/",
                       params={"experiment": experiment, "filter": filter_string,
                               "order_by": order_by, "max_results": 100})
        r.raise_for_status()
        return len(r.json()["runs"])

    def upload(self, run_id: str, path: str, data: bytes) -> None:
        r = self.s.put(f"{self.url}/api/v1/runs/{run_id}/artifacts/{path}", data=data,
                       headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()

    def download(self, run_id: str, path: str) -> int:
        with self.s.get(f"{self.url}/api/v1/runs/{run_id}/artifacts/{path}", stream=True) as r:
            r.raise_for_status()
            return sum(len(chunk) for chunk in r.iter_content(1 << 20))


class MLflow:
    def __init__(self, url: str):
        self.url = url
        self.s = requests.Session()
        self.experiments: dict[str, str] = {}

    def _experiment(self, name: str) -> str:
        if name not in self.experiments:
            r = self.s.post(f"{self.url}/api/2.0/mlflow/experiments/create", json={"name": name})
            r.raise_for_status()
            self.experiments[name] = r.json()["experiment_id"]
        return self.experiments[name]

    def create_run(self, experiment: str, name: str = "") -> str:
        r = self.s.post(f"{self.url}/api/2.0/mlflow/runs/create",
                        json={"experiment_id": self._experiment(experiment), "run_name": name,
                              "start_time": int(time.time() * 1000)})
        r.raise_for_status()
        return r.json()["run"]["info"]["run_id"]

    def log_batch(self, run_id: str, metrics: list[dict], params: list[dict] | None = None) -> None:
        r = self.s.post(f"{self.url}/api/2.0/mlflow/runs/log-batch",
                        json={"run_id": run_id, "metrics": metrics, "params": params or []})
        r.raise_for_status()

    def history(self, run_id: str, key: str, max_points: int | None = None) -> int:
        if max_points:
            # What MLflow's own UI calls for a sampled chart.
            r = self.s.get(f"{self.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                           params={"run_ids": run_id, "metric_key": key, "max_results": max_points})
            r.raise_for_status()
            return len(r.json().get("metrics", []))
        total, token = 0, None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": 25_000}
            if token:
                params["page_token"] = token
            r = self.s.get(f"{self.url}/api/2.0/mlflow/metrics/get-history", params=params)
            r.raise_for_status()
            body = r.json()
            total += len(body.get("metrics", []))
            token = body.get("next_page_token")
            if not token:
                return total

    def search(self, experiment: str, filter_string: str, order_by: str) -> int:
        r = self.s.post(f"{self.url}/api/2.0/mlflow/runs/search",
                        json={"experiment_ids": [self._experiment(experiment)], "filter": filter_string,
                              "order_by": [order_by], "max_results": 100})
        r.raise_for_status()
        return len(r.json().get("runs", []))

    def _artifact_url(self, run_id: str, path: str) -> str:
        return f"{self.url}/api/2.0/mlflow-artifacts/artifacts/bench/{run_id}/artifacts/{path}"

    def upload(self, run_id: str, path: str, data: bytes) -> None:
        r = self.s.put(self._artifact_url(run_id, path), data=data,
                       headers={"Content-Type": "application/octet-stream"})
        r.raise_for_status()

    def download(self, run_id: str, path: str) -> int:
        with self.s.get(self._artifact_url(run_id, path), stream=True) as r:
            r.raise_for_status()
            return sum(len(chunk) for chunk in r.iter_content(1 << 20))


def load() -> str:
    """The machine's 1-minute load average: the figures mean little on a busy machine."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def pg_analyze(database: str) -> None:
    """What autovacuum does within a minute of a bulk load: fresh table statistics for the planner."""
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-qc", "ANALYZE"],
                   check=True)


def measure(client, label: str, database: str | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    now = int(time.time() * 1000)
    print(f"  {label}: starting, {load()}", flush=True)

    # 1. Ingest: 200,000 points in batches of 1,000 (two keys of 100,000 steps each).
    run_id = client.create_run("ingest", "ingest")
    batches = []
    for start in range(0, POINTS, BATCH):
        batches.append([
            {"key": "loss" if i % 2 == 0 else "acc", "value": random.random(), "step": i // 2,
             "timestamp": now + i}
            for i in range(start, start + BATCH)
        ])
    t0 = time.perf_counter()
    for metrics in batches:
        client.log_batch(run_id, metrics)
    out["ingest"] = POINTS / (time.perf_counter() - t0)
    print(f"  {label}: ingest {out['ingest']:,.0f} points/s", flush=True)

    # 2. History: the 100,000-point 'loss' series, in full and downsampled to 1,000 points.
    t0 = time.perf_counter()
    n = client.history(run_id, "loss")
    out["history_full"] = time.perf_counter() - t0
    assert n == HISTORY_POINTS, f"{label} returned {n} points"
    t0 = time.perf_counter()
    n = client.history(run_id, "loss", max_points=1_000)
    out["history_sampled"] = time.perf_counter() - t0
    assert 0 < n <= 1_000 * 2, f"{label} returned {n} sampled points"
    print(f"  {label}: history full {out['history_full']:.3f} s, sampled {out['history_sampled']:.3f} s",
          flush=True)

    # 3. Search over 5,000 runs (seeding is not timed).
    def seed(i: int) -> None:
        rid = client.create_run("search", f"run-{i}")
        client.log_batch(rid, [{"key": "acc", "value": random.random(), "step": 0, "timestamp": now}],
                         [{"key": "model", "value": random.choice(["rf", "lr", "gb"])}])

    client.create_run("search", "first")  # creates the experiment before the threads race for it
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(seed, range(SEARCH_RUNS - 1)))
    print(f"  {label}: seeded {SEARCH_RUNS} runs in {time.perf_counter() - t0:.0f} s", flush=True)
    if database:
        # Searched seconds after the bulk load, both planners would otherwise guess without statistics.
        pg_analyze(database)
    filter_string = "metrics.acc > 0.5 and params.model = 'rf'"
    timings = []
    for _ in range(SEARCH_REPEATS):
        t0 = time.perf_counter()
        found = client.search("search", filter_string, "metrics.acc DESC")
        timings.append(time.perf_counter() - t0)
        assert found == 100, f"{label} search returned {found} runs"
    out["search"] = statistics.median(timings) * 1000

    # 4. Artifacts: 50 MB up and down.
    data = os.urandom(ARTIFACT_MB * 1024 * 1024)
    t0 = time.perf_counter()
    client.upload(run_id, "big/blob.bin", data)
    out["upload"] = ARTIFACT_MB / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    size = client.download(run_id, "big/blob.bin")
    out["download"] = ARTIFACT_MB / (time.perf_counter() - t0)
    assert size == len(data)
    print(f"  {label}: search {out['search']:.1f} ms, artifacts up {out['upload']:.0f} MB/s "
          f"down {out['download']:.0f} MB/s; {load()}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true",
                        help="fresh PostgreSQL databases instead of SQLite")
    args = parser.parse_args()
    random.seed(7)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    with steward_server(postgres=args.postgres) as server:
        steward = measure(Steward(server.url, server.token), "Steward",
                          "steward_bench" if args.postgres else None)
    with mlflow_server(postgres=args.postgres) as server:
        mlflow = measure(MLflow(server.url), "MLflow", "mlflow_bench" if args.postgres else None)
    print_table(f"Tracking server, one worker each, {backend}", [
        ("metric ingest, 200k points in batches of 1k", steward["ingest"], mlflow["ingest"], "points/s",
         True),
        ("read 100k-point history, full", steward["history_full"], mlflow["history_full"], "s", False),
        ("read 100k-point history, 1k points", steward["history_sampled"], mlflow["history_sampled"], "s",
         False),
        ("search 5k runs, filter+sort, page of 100", steward["search"], mlflow["search"], "ms (p50)", False),
        ("artifact upload, 50 MB", steward["upload"], mlflow["upload"], "MB/s", True),
        ("artifact download, 50 MB", steward["download"], mlflow["download"], "MB/s", True),
    ])


if __name__ == "__main__":
    main()
