"""Start Steward and an MLflow tracking server side by side for a benchmark.

Each gets a fresh database (SQLite file, or a fresh PostgreSQL database) and
its own folder; both are stopped when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
PG = "postgresql://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def pg_fresh_database(name: str) -> str:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"],
                   check=True)
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
                   check=True)
    return f"{PG}/{name}"


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    workdir: Path
    token: str = ""
    database: str = ""  # its PostgreSQL database, if any

    def cpu_seconds(self) -> float:
        """CPU time the server has used: its processes, and its PostgreSQL backends if it has any.

        Unlike wall time, this barely moves when other work shares the machine.
        """
        return cpu_seconds(process_tree(self.process.pid) + pg_backends(self.database))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.contextmanager
def steward_server(*, postgres: bool = False, workers: int = 1) -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-steward-"))
    env = dict(os.environ, STEWARD_VAR_DIR=str(workdir), SECRET_KEY="bench-only-secret",
               LOG_LEVEL="WARNING", MAX_ARTIFACT_BYTES=str(2 * 1024**3))
    env.pop("DATABASE_URL", None)
    if postgres:
        env["DATABASE_URL"] = pg_fresh_database("steward_bench")
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
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), "mlplatform.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", str(workers), "--timeout", "600", "--log-level", "warning", "--no-control-socket"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    server = Server("Steward", f"http://127.0.0.1:{port}", process, workdir, token,
                    "steward_bench" if postgres else "")
    try:
        wait_http(server.url + "/healthz")
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def mlflow_binary() -> str:
    candidates = (os.environ.get("MLFLOW_BIN"), str(ROOT / ".venv-bench" / "bin" / "mlflow"),
                  "/tmp/benchvenv/bin/mlflow", shutil.which("mlflow"))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("MLflow is not installed: run `make bench-deps` (or set MLFLOW_BIN)")


@contextlib.contextmanager
def mlflow_server(*, postgres: bool = False) -> Iterator[Server]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    store = pg_fresh_database("mlflow_bench") if postgres else f"sqlite:///{workdir / 'mlflow.db'}"
    port = free_port()
    # One worker is MLflow at its fastest here: more uvicorn workers add ~40 ms per request.
    process = subprocess.Popen(
        [mlflow_binary(), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", store, "--artifacts-destination", str(workdir / "artifacts"),
         "--serve-artifacts"],
        cwd=workdir, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE="true"),
    )
    server = Server("MLflow", f"http://127.0.0.1:{port}", process, workdir,
                    database="mlflow_bench" if postgres else "")
    try:
        wait_http(server.url + "/health", timeout=180)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    todo.extend(int(p) for p in f.read().split())
    return found


def pg_backends(database: str) -> list[int]:
    if not database:
        return []
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-Atc",
         "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"],
        check=True, capture_output=True, text=True)
    return [int(line) for line in done.stdout.split()]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS
