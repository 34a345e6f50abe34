"""Dataset upload and profiling: memory and speed.

Run by hand (not in CI):

    .venv/bin/python bench/datasets.py                  # 1 GB CSV, 1,000,000 x 50 profile
    .venv/bin/python bench/datasets.py --csv-mb 200 --rows 200000

1. Upload: writes a CSV of ``--csv-mb`` MB, streams it to a Steward web server
   (gunicorn, one sync worker, fresh SQLite) and prints the web worker's peak
   RSS (VmHWM; target <= 250 MB) and MB/s for the whole request: receive,
   sha256, store, and the streaming schema pass.
2. Profile: a ``--rows`` x 50 table (40 numeric, 10 categorical columns) is
   uploaded as Parquet and its profile job is run once, in this process, by
   the same code a Celery worker runs (target <= 30 s). The floor beside it is
   pandas reading the same file plus DataFrame.describe() and a 20-bin
   histogram or value counts per column.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"


def write_csv(path: Path, megabytes: int) -> int:
    """About ``megabytes`` of CSV in 500,000-row blocks: numbers, a date-free category and text ids."""
    rng = np.random.default_rng(0)
    target = megabytes * 1024 * 1024
    block = 500_000
    first = True
    with open(path, "wb") as fh:
        while fh.tell() < target:
            table = pa.table({
                "id": np.arange(block, dtype=np.int64) + fh.tell(),
                "amount": rng.normal(100, 30, block).round(2),
                "rate": rng.random(block).round(6),
                "count": rng.integers(0, 1000, block),
                "score": rng.normal(0, 1, block).round(5),
                "segment": rng.choice(np.array(["retail", "business", "private", "public"]), block),
                "region": rng.choice(np.array([f"region-{i:02d}" for i in range(40)]), block),
                "label": rng.integers(0, 2, block),
            })
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=first))
            first = False
    return path.stat().st_size


def write_profile_table(path: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    cols: dict[str, np.ndarray] = {}
    for i in range(40):
        values = rng.normal(i, 1 + i % 5, rows)
        values[rng.random(rows) < 0.02] = np.nan
        cols[f"num_{i:02d}"] = values
    for i in range(10):
        cols[f"cat_{i:02d}"] = rng.choice(np.array([f"v{j}" for j in range(5 + 3 * i)]), rows)
    pq.write_table(pa.table(cols), path)


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    raise RuntimeError("gunicorn started no worker")


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def upload(url: str, token: str, name: str, path: Path, **params) -> tuple[dict, float]:
    started = time.perf_counter()
    with open(path, "rb") as fh:
        response = requests.post(f"{url}/api/v1/projects/bench/datasets/{name}/versions/", data=fh,
                                 params={"filename": path.name, **params},
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/octet-stream"}, timeout=3600)
    elapsed = time.perf_counter() - started
    if response.status_code not in (200, 201):
        sys.exit(f"upload failed: {response.status_code} {response.text[:500]}")
    return response.json(), elapsed


def floor(path: Path) -> float:
    import pandas as pd

    started = time.perf_counter()
    df = pd.read_parquet(path)
    df.describe()
    for name in df.columns:
        if df[name].dtype.kind == "f":
            values = df[name].to_numpy()
            np.histogram(values[~np.isnan(values)], bins=20)
        else:
            df[name].value_counts()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv-mb", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=8061)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-datasets-"))
    env = dict(os.environ, STEWARD_VAR_DIR=str(workdir / "var"), SECRET_KEY="bench-only-secret",
               LOG_LEVEL="WARNING", CELERY_BROKER_URL="filesystem://")
    env.pop("DATABASE_URL", None)
    for key in ("STEWARD_VAR_DIR", "SECRET_KEY", "LOG_LEVEL", "CELERY_BROKER_URL"):
        os.environ[key] = env[key]
    os.environ.pop("DATABASE_URL", None)
    server = None
    try:
        print(f"Writing a {args.csv_mb} MB CSV and a {args.rows:,} x 50 Parquet file ...", flush=True)
        csv_path = workdir / "big.csv"
        size = write_csv(csv_path, args.csv_mb)
        table_path = workdir / "profile.parquet"
        write_profile_table(table_path, args.rows)

        manage = [str(PYTHON), str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        token = subprocess.run(
            [*manage, "shell", "-c",
             "from django.contrib.auth.models import User\n"
             "from accounts import services\n"
             "u = User.objects.create_user('bench', password='bench-pw-123', is_staff=True)\n"
             "services.project_create(user=u, slug='bench')\n"
             "print(services.api_token_create(user=u, name='bench')[1])"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        server = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "mlplatform.wsgi", "-b", f"127.0.0.1:{args.port}",
             "-w", "1", "--timeout", "3600", "--log-level", "warning"],
            cwd=ROOT, env=env, start_new_session=True,
        )
        url = f"http://127.0.0.1:{args.port}"
        wait_http(url + "/healthz")
        worker = worker_pid(server.pid)
        requests.get(f"{url}/api/v1/projects/bench/datasets/", headers={"Authorization": f"Bearer {token}"})
        before = rss_mb(worker, "VmRSS")

        body, elapsed = upload(url, token, "big", csv_path)
        peak = rss_mb(worker, "VmHWM")
        print(f"\nUpload of a {size / 2**20:,.0f} MB CSV ({body['row_count']:,} rows x "
              f"{body['column_count']} columns)")
        print(f"  web worker RSS before: {before:8.1f} MB")
        print(f"  web worker peak RSS:   {peak:8.1f} MB   (target <= 250 MB)  "
              f"{'OK' if peak <= 250 else 'OVER'}")
        print(f"  throughput:            {size / 2**20 / elapsed:8.1f} MB/s  ({elapsed:.1f} s)")

        version, up_s = upload(url, token, "profile", table_path)
        server_stop(server)
        server = None

        import django

        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
        django.setup()
        from core.models import Job
        from datasets import services as datasets

        job = Job.objects.get(pk=version["profile_job"]["id"])
        started = time.perf_counter()
        datasets.dataset_profile_compute(job_id=job.pk)
        profile_s = time.perf_counter() - started
        job.refresh_from_db()
        if job.status != "succeeded":
            sys.exit(f"profile job {job.status}: {job.error}")
        floor_s = floor(table_path)
        print(f"\nProfile of {args.rows:,} rows x 50 columns (one process, as a worker runs it)")
        print(f"  Steward profile job:                 {profile_s:7.2f} s   (target <= 30 s)  "
              f"{'OK' if profile_s <= 30 else 'OVER'}")
        print(f"  floor: read + describe() + histograms: {floor_s:5.2f} s")
        print(f"  ratio: {profile_s / floor_s:.1f}x the floor")
    finally:
        if server is not None:
            server_stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


def server_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
