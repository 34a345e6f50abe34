"""Steward's predict endpoint against `mlflow models serve`, same model, same load.

    python bench/serve.py [--seconds 8] [--workers 2] [--threads 4] [--mlflow-python .venv-bench/bin/python]

Registers a 100-tree RandomForest trained on scikit-learn's breast-cancer data
set in Steward, serves it with gunicorn the way `make run` starts it (threaded
workers, 4 threads each; Steward serves it with ONNX Runtime once its export is
verified), and serves the same fitted model with `mlflow models serve` (MLflow
from requirements-bench.txt, in its own virtualenv; as many worker processes
as Steward) twice: in MLflow's sklearn flavour, and in its ONNX flavour
(`mlflow.onnx`, the forest exported with skl2onnx: one float32 matrix input,
the label output), MLflow's way to serve a model with ONNX Runtime. Each
server is driven with 1 and 16 concurrent clients, single-row requests and
then 100-row requests, over HTTP/1.1 keep-alive with JSON records, and the
script prints p50/p99 latency, requests/s and server CPU per request.
Every answer of every server is checked: its labels must equal scikit-learn's
own predictions for the rows sent, or it counts as wrong (and the script
fails at the end).

Server CPU is read from /proc for the server's whole process tree (gunicorn
master and workers; the mlflow launcher, uvicorn and its workers). Steward
also talks to PostgreSQL (its prediction log), so the CPU its database
backends spent is shown in its own column and counted in the table. Everything
listens on 127.0.0.1 only; every phase is bounded by time.

With ``--baseline-ref REF`` Steward is also served from a checkout of an
earlier commit (``git archive`` of REF into a temporary folder, with this
checkout's virtualenv, its own database ``<name>_baseline`` and var folder),
started the same way, and the two are driven in turns, phase by phase
(``--repeats`` times, the order alternating), so both see the same machine
load; the table then puts Steward beside its baseline with the change in
requests/s and p50 latency. ``--baseline-ref health`` names the commit before
the operational-health logging (latency and failures of every served request)
was added to serving, found with ``git log -S serving_observe -- registry/``. Whether or
not there is a baseline, the script also times the serving observers (that logging) in its own
process, a figure the machine's load does not move, and prints it as a share of Steward's
server CPU per request.

Environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/steward_bench),
STEWARD_VAR_DIR (default /tmp/steward_bench).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pickle
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Table, print_load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds before each phase")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (both servers)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class for Steward")
    parser.add_argument("--threads", type=int, default=4,
                        help="threads per Steward worker (4, as `make run` and the Docker image start it)")
    parser.add_argument("--reuse-port", action="store_true",
                        help="each Steward worker listens on its own socket (SO_REUSEPORT), so the kernel "
                             "spreads connections over the workers; not how `make run` starts it")
    parser.add_argument("--steward-port", type=int, default=8071)
    parser.add_argument("--mlflow-port", type=int, default=8072)
    candidates = (ROOT / ".venv-bench/bin/python", Path("/tmp/benchvenv/bin/python"))
    default_python = next((str(p) for p in candidates if p.exists()), "")
    parser.add_argument("--mlflow-python", default=default_python,
                        help="python of a virtualenv with requirements-bench.txt (make bench-deps makes "
                             ".venv-bench); '' skips MLflow")
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--rows", default="1,100")
    parser.add_argument("--baseline-ref", default="",
                        help="also serve Steward from this git ref and compare ('health': the commit before "
                             "latency and failure logging was added to serving)")
    parser.add_argument("--baseline-port", type=int, default=8073)
    parser.add_argument("--repeats", type=int, default=1,
                        help="measured phases per server and load (the median is shown)")
    return parser.parse_args()


# --- Process CPU from /proc ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(_children(p))
    return found


def cpu_by_process(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings, process by process: a process that ended in between (a
    database backend whose connection closed) takes its time with it, and must not count as a
    negative amount; one that started counts from zero."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def connections_by_process(pids: list[int], port: int) -> list[int]:
    """How many established connections to ``port`` each process holds (those holding any), most first.

    The workers of a pre-fork server share one listening socket, and which one
    accepts a connection is a race: this shows how the clients were spread.
    """
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(fields[9])
    counts = []
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if held:
            counts.append(held)
    return sorted(counts, reverse=True)


# --- A small keep-alive HTTP/1.1 load generator ----------------------------------------------


class Client:
    def __init__(self, port: int, request: bytes):
        self.port = port
        self.request = request
        self.reader = self.writer = None

    async def _connect(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def call(self) -> tuple[int, bytes]:
        if self.writer is None:
            await self._connect()
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return status, body

    def close(self):
        if self.writer is not None:
            self.writer.close()


def http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode() + body


async def _drive(port: int, request: bytes, clients: int, seconds: float, warmup: float, pids, db_pids,
                 check):
    latencies: list[float] = []
    errors = wrong = 0
    state = {"measuring": False, "stop": False}

    async def worker():
        nonlocal errors, wrong
        client = Client(port, request)
        try:
            while not state["stop"]:
                started = time.perf_counter()
                try:
                    status, body = await client.call()
                except (ConnectionError, asyncio.IncompleteReadError):
                    client.close()
                    client.reader = client.writer = None
                    status, body = 0, b""
                if state["measuring"]:
                    if status == 200:
                        latencies.append(time.perf_counter() - started)
                        # Every answer is checked, not a sample: the parse costs the client, not the server.
                        if not check(body):
                            wrong += 1
                    else:
                        errors += 1
        finally:
            client.close()

    tasks = [asyncio.create_task(worker()) for _ in range(clients)]
    await asyncio.sleep(warmup)
    server_before, db_before = cpu_by_process(pids()), cpu_by_process(db_pids())
    state["measuring"] = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    state["measuring"] = False
    elapsed = time.perf_counter() - started
    server_cpu = cpu_used(server_before, cpu_by_process(pids()))
    db_cpu = cpu_used(db_before, cpu_by_process(db_pids()))
    spread = connections_by_process(pids(), port)
    state["stop"] = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, errors, wrong, elapsed, server_cpu, db_cpu, spread


async def _warm(port: int, request: bytes, clients: int, timeout: float) -> int:
    """Until every worker has loaded the model: the last 50 answers all came back quickly."""
    recent: list[float] = []
    done = {"stop": False}

    async def worker():
        client = Client(port, request)
        while not done["stop"]:
            started = time.perf_counter()
            try:
                status, body = await client.call()
            except (ConnectionError, asyncio.IncompleteReadError):
                client.close()
                client.reader = client.writer = None
                await asyncio.sleep(0.2)
                continue
            if status != 200:
                raise SystemExit(f"warm-up request answered {status}: {body[:500]!r}")
            recent.append(time.perf_counter() - started)
            del recent[:-50]
        client.close()

    tasks = [asyncio.create_task(worker()) for _ in range(clients)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if len(recent) == 50 and max(recent) < 0.5:
            break
    done["stop"] = True
    await asyncio.gather(*tasks)
    return len(recent)


def warm(port: int, request: bytes, clients: int, timeout: float = 180.0) -> None:
    asyncio.run(_warm(port, request, clients, timeout))


def drive(**kwargs) -> dict:
    latencies, errors, wrong, elapsed, server_cpu, db_cpu, spread = asyncio.run(_drive(**kwargs))
    latencies.sort()
    n = len(latencies)

    def pct(q):
        return latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {"requests": n, "errors": errors, "wrong": wrong, "rps": n / elapsed,
            "p50": pct(0.50), "p99": pct(0.99),
            "cpu_ms": server_cpu * 1000 / max(n, 1), "db_cpu_ms": db_cpu * 1000 / max(n, 1),
            "spread": "+".join(map(str, spread)) or "-"}


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 120.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise SystemExit(f"server on port {port} exited with {proc.returncode}\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- Steward setup ---------------------------------------------------------------------------


def steward_env(suffix: str = "") -> dict[str, str]:
    """The environment Steward is set up and served with; ``suffix`` names the baseline's own
    database and var folder."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/steward_bench")
    env.setdefault("STEWARD_VAR_DIR", "/tmp/steward_bench")
    env["DATABASE_URL"] += suffix
    env["STEWARD_VAR_DIR"] += suffix
    env.setdefault("SECRET_KEY", "bench-only-secret-key")
    env.setdefault("LOG_LEVEL", "WARNING")
    env["DJANGO_SETTINGS_MODULE"] = "mlplatform.settings"
    return env


def steward_setup(model, X_test, root: Path = ROOT, env: dict[str, str] | None = None) -> dict:
    """Register the model in Steward through its own services, as a run's skops artifact."""
    os.environ.update(env or steward_env())
    sys.path.insert(0, str(root))
    _database_ensure(os.environ["DATABASE_URL"])
    import django

    django.setup()
    import skops.io as sio
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from accounts import services as accounts
    from accounts.models import Project
    from experiments import artifacts
    from experiments import services as tracking
    from registry import services as registry

    try:
        from registry import registration
    except ImportError:  # a baseline from before registration.py split out of registry/services.py
        registration = registry

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    project = Project.objects.filter(slug="bench").first() or accounts.project_create(user=user, slug="bench")
    _, token = accounts.api_token_create(user=user, name="bench")
    run = tracking.run_create(project=project, experiment="serving bench", user=user, seed=0).run

    def put(path, data):
        artifacts.artifact_upload(run=run, path=path, stream=io.BytesIO(data), content_length=len(data))

    put("model/model.skops", sio.dumps(model))
    example = X_test.head(200)
    put("model/input_example.json", json.dumps({
        "columns": list(example.columns), "dtypes": [str(t) for t in example.dtypes],
        "data": example.values.tolist()}).encode())
    version = registration.model_version_create(project=project, model_name="bench-forest", run=run,
                                            artifact_path="model", user=user)
    registration.model_version_check(job_id=version.check_job_id)
    version.refresh_from_db()
    registry.alias_set(model=version.model, alias="live", version=version, user=user)
    print(f"steward: registered bench-forest v{version.version}, status {version.status}, "
          f"runtime {version.runtime} ({version.runtime_reason})")
    from django.db import connections

    connections.close_all()
    return {"token": token, "path": "/api/v1/serve/bench/bench-forest/live/predict", "version_id": version.pk}


def steward_setup_elsewhere(model, X_test, root: Path, env: dict[str, str]) -> dict:
    """``steward_setup`` in a fresh process that imports the checkout at ``root``."""
    with tempfile.TemporaryDirectory(prefix="steward-bench-setup-") as tmp:
        given, answer = Path(tmp) / "model.pickle", Path(tmp) / "setup.json"
        given.write_bytes(pickle.dumps((model, X_test)))  # written here, read back by this script
        subprocess.run([str(ROOT / ".venv/bin/python"), __file__, "--setup-only", str(root), str(given),
                        str(answer)], cwd=root, env=env, check=True)
        return json.loads(answer.read_text())


def _setup_only(root: str, given: str, answer: str) -> None:
    model, X_test = pickle.loads(Path(given).read_bytes())  # noqa: S301 - our own file, see above
    Path(answer).write_text(json.dumps(steward_setup(model, X_test, Path(root), dict(os.environ))))


def baseline_ref(ref: str) -> str:
    if ref != "health":
        return ref
    # The commit that added the operational-health observer to serving; its parent serves without it.
    found = subprocess.run(["git", "-C", str(ROOT), "log", "--format=%H", "--reverse", "-S",
                            "serving_observe", "--", "registry/serving.py"],
                           check=True, capture_output=True, text=True).stdout.split()
    if not found:
        raise SystemExit("no commit adds serving_observe to registry/serving.py")
    return f"{found[0]}^"


def baseline_checkout(ref: str) -> Path:
    """The tree of ``ref`` in a temporary folder (nothing is registered in the repository), with
    this checkout's virtualenv."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix=f"steward-bench-{commit[:10]}-"))
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(folder)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    (folder / ".venv").symlink_to((ROOT / ".venv").resolve())
    subject = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", commit],
                             check=True, capture_output=True, text=True).stdout.strip()
    print(f"baseline: {subject[:110]}", flush=True)
    return folder


def observer_cost(version_id: int, calls: int = 200_000) -> float | None:
    """CPU microseconds the serving observers (monitoring's health recorder) add to one request,
    timed in this process, where this checkout is set up: a figure the machine's load does not
    move, to set beside the server CPU per request."""
    from registry import serving

    if not serving._observers:
        return None
    started = time.process_time()
    for _ in range(calls):
        begun = time.perf_counter()
        serving.serving_observe(version_id, 1, time.perf_counter() - begun, "ok")
    cost = (time.process_time() - started) / calls * 1e6
    from monitoring import health

    with health._lock:
        health._counts.clear()
    return cost


def _database_ensure(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def postgres_backends(url: str) -> list[int]:
    if not url.startswith("postgres"):
        return []
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [r[0] for r in rows]


# --- MLflow setup ----------------------------------------------------------------------------

MLFLOW_SAVE = """
import pickle, sys
import mlflow.onnx, mlflow.sklearn
import onnx
import pandas as pd
from mlflow.models import infer_signature
flavour, source, example_path, target = sys.argv[1:5]
example = pd.read_json(example_path, orient="split")
if flavour == "sklearn":
    model = pickle.load(open(source, "rb"))
    mlflow.sklearn.save_model(model, target, signature=infer_signature(example, model.predict(example)),
                              input_example=example.head(2), skops_trusted_types=["sklearn.tree._tree.Tree"])
else:
    labels = pd.DataFrame({"label": pd.read_json(sys.argv[5], typ="series").to_numpy()})
    mlflow.onnx.save_model(onnx.load(source), target, signature=infer_signature(example, labels),
                           input_example=example.head(2))
"""


def onnx_export(model, X_train, X_test) -> tuple[bytes, int]:
    """The forest as ONNX for MLflow's onnx flavour, and how many test rows its labels get wrong.

    One float32 matrix input (what scikit-learn's trees compare in) and only the
    label output: MLflow's ONNX pyfunc feeds a frame's values to a single input
    and answers one column per output, which a (rows, 2) probability output
    cannot be.
    """
    import numpy as np
    import onnxruntime
    from skl2onnx import to_onnx

    onx = to_onnx(model, X_train.head(1).to_numpy(np.float32), options={"zipmap": False},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    keep = [o for o in onx.graph.output if o.name == "label"]
    del onx.graph.output[:]
    onx.graph.output.extend(keep)
    data = onx.SerializeToString()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    labels = session.run(None, {session.get_inputs()[0].name: X_test.to_numpy(np.float32)})[0]
    return data, int((labels.ravel() != model.predict(X_test)).sum())


def mlflow_setup(python: str, flavour: str, model, X_train, X_test, workdir: Path, port: int,
                 workers: int) -> subprocess.Popen:
    example = workdir / "example.json"
    example.write_text(X_test.head(50).to_json(orient="split"))
    source = workdir / f"model-{flavour}"
    extra = []
    if flavour == "sklearn":
        source.write_bytes(pickle.dumps(model))  # written by us a moment ago, read back by us
    else:
        data, wrong = onnx_export(model, X_train, X_test)
        print(f"mlflow onnx: export gets {wrong} of {len(X_test)} test labels other than scikit-learn's",
              flush=True)
        source.write_bytes(data)
        labels = workdir / "labels.json"
        labels.write_text(json.dumps(model.predict(X_test.head(50)).tolist()))
        extra = [str(labels)]
    model_dir = workdir / f"mlflow-{flavour}"
    shutil.rmtree(model_dir, ignore_errors=True)
    subprocess.run([python, "-c", MLFLOW_SAVE, flavour, str(source), str(example), str(model_dir), *extra],
                   check=True, env={**os.environ, "MLFLOW_TRACKING_URI": f"file://{workdir}/mlruns"})
    mlflow = str(Path(python).parent / "mlflow")
    log = open(workdir / f"server-{flavour}.log", "wb")  # noqa: SIM115 - the server writes to it until it stops
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{workdir}/mlruns",
           "PATH": f"{Path(python).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.Popen(
        [mlflow, "models", "serve", "-m", str(model_dir), "-h", "127.0.0.1", "-p", str(port),
         "-w", str(workers), "--env-manager", "local"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


# --- Checking answers --------------------------------------------------------------------------


def predictions_of(body: bytes) -> list:
    """The predicted labels of any of the three servers' answers.

    Steward and MLflow's sklearn flavour answer ``{"predictions": [label, ...]}``;
    MLflow's ONNX flavour answers one record per row, ``[{"label": label}, ...]``.
    """
    predictions = json.loads(body)["predictions"]
    if predictions and isinstance(predictions[0], dict):
        return [p["label"] for p in predictions]
    return predictions


def checker(expected: list):
    seen: set[bytes] = set()  # answers already found equal; Steward's differ by request id

    def check(body: bytes) -> bool:
        if body in seen:
            return True
        try:
            ok = predictions_of(body) == expected
        except (ValueError, KeyError, TypeError):
            return False
        if ok and len(seen) < 16:
            seen.add(body)
        return ok

    return check


# --- Main --------------------------------------------------------------------------------------

SERVERS = ("Steward", "MLflow sklearn", "MLflow ONNX")
BASELINE = "Steward before"


@dataclass
class Target:
    """One server to drive: where it listens, how to ask it, whose CPU it uses."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    payload: Callable[[int], Any]
    pids: Callable[[], list[int]]
    db_pids: Callable[[], list[int]]


def measure(targets: list[Target], rows: list[int], clients: list[int], expected, args) -> list[tuple]:
    """Each load on each target in turn (the order alternating between repeats), so targets
    measured together see the same machine."""
    results = []
    for n_rows in rows:
        requests = {}
        for t in targets:
            requests[t.name] = http_request(t.port, t.path, json.dumps(t.payload(n_rows)).encode(), t.headers)
            warm(t.port, requests[t.name], 4 * args.workers)
        for c in clients:
            for repeat in range(args.repeats):
                for t in targets if repeat % 2 == 0 else targets[::-1]:
                    r = drive(port=t.port, request=requests[t.name], clients=c, seconds=args.seconds,
                              warmup=args.warmup, pids=t.pids, db_pids=t.db_pids,
                              check=checker(expected(n_rows)))
                    results.append((t.name, c, n_rows, r))
                    print(_row(t.name, c, n_rows, r), flush=True)
    return results


def main() -> None:
    args = parse_args()
    # Other processes on the machine move these figures; say how busy it was.
    print_load("before")
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(X_train, y_train)
    records = X_test.to_dict("records")
    reference = model.predict(X_test).tolist()  # what every answer must predict

    def rows_of(n):
        return [records[i % len(records)] for i in range(n)]

    def expected(n):
        return [reference[i % len(records)] for i in range(n)]

    checkouts = [("Steward", ROOT, args.steward_port, steward_env())]
    if args.baseline_ref:
        checkouts.append((BASELINE, baseline_checkout(baseline_ref(args.baseline_ref)), args.baseline_port,
                          steward_env("_baseline")))
    results = []
    clients = [int(c) for c in args.clients.split(",")]
    rows = [int(r) for r in args.rows.split(",")]
    servers: list[subprocess.Popen] = []
    targets: list[Target] = []
    observed_us = None
    try:
        for name, root, port, env in checkouts:
            if root == ROOT:
                steward = steward_setup(model, X_test, root, env)
                observed_us = observer_cost(steward["version_id"])
            else:
                steward = steward_setup_elsewhere(model, X_test, root, env)
            # The web command `make run` starts (the Procfile's web line), with the same number of
            # worker processes as MLflow gets.
            command = [str(ROOT / ".venv/bin/gunicorn"), "mlplatform.wsgi:application",
                       "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
                       "--worker-class", args.worker_class, "--threads", str(args.threads),
                       "--no-control-socket", "--log-level", "warning",
                       *(["--reuse-port"] if args.reuse_port else [])]
            print(f"{name}: {' '.join(command[1:])} in {root}")
            gunicorn = subprocess.Popen(command, cwd=root, env=env, start_new_session=True)
            servers.append(gunicorn)
            wait_for_port(port, gunicorn)
            targets.append(Target(
                name, port, steward["path"], {"Authorization": f"Bearer {steward['token']}"},
                lambda n: {"records": rows_of(n)}, lambda pid=gunicorn.pid: process_tree(pid),
                lambda url=env["DATABASE_URL"]: postgres_backends(url),
            ))
        print(_header())
        results += measure(targets, rows, clients, expected, args)
    finally:
        for server in servers:
            stop(server)
        for _, root, _, _ in checkouts[1:]:
            shutil.rmtree(root, ignore_errors=True)

    if args.mlflow_python and Path(args.mlflow_python).exists():
        for flavour, name in (("sklearn", "MLflow sklearn"), ("onnx", "MLflow ONNX")):
            workdir = Path(tempfile.mkdtemp(prefix="steward-bench-mlflow-"))
            server = mlflow_setup(args.mlflow_python, flavour, model, X_train, X_test, workdir,
                                  args.mlflow_port, args.workers)
            try:
                wait_for_port(args.mlflow_port, server, log=workdir / f"server-{flavour}.log")
                print(_header())
                target = Target(name, args.mlflow_port, "/invocations", {},
                                lambda n: {"dataframe_records": rows_of(n)},
                                lambda server=server: process_tree(server.pid), list)
                results += measure([target], rows, clients, expected, args)
            finally:
                stop(server)
                shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"(MLflow skipped: no python at {args.mlflow_python!r})")

    print()
    print_load("after")
    print(_header())
    for server, c, n_rows, r in results:
        print(_row(server, c, n_rows, r))
    by_key: dict[tuple, list[dict]] = {}
    for s, c, n, r in results:
        by_key.setdefault((s, c, n), []).append(r)
    peers = [name for name in SERVERS[1:] if any(k[0] == name for k in by_key)]
    columns = ("Steward", *([BASELINE] if args.baseline_ref else []), *peers)
    table = Table(f"Predict endpoint, {args.workers} worker processes each, HTTP/1.1 keep-alive, "
                  "JSON records", columns=columns)
    changes = []
    for c in clients:
        for n_rows in rows:
            got = {name: by_key[(name, c, n_rows)] for name in columns if (name, c, n_rows) in by_key}
            wrong = ", ".join(f"{sum(r['wrong'] for r in rs)} wrong" for rs in got.values())
            checked = f"labels = scikit-learn's on every answer ({wrong})"
            where = f"{c} client{'s' if c > 1 else ''}, {n_rows} row{'s' if n_rows > 1 else ''}"
            table.add(f"{where}: requests/s", "req/s", {k: [r["rps"] for r in rs] for k, rs in got.items()},
                      higher_is_better=True, checked=checked)
            table.add(f"{where}: p50 latency", "ms", {k: [r["p50"] for r in rs] for k, rs in got.items()},
                      higher_is_better=False, checked="")
            table.add(f"{where}: server CPU per request", "ms",
                      {k: [r["cpu_ms"] + r["db_cpu_ms"] for r in rs] for k, rs in got.items()},
                      higher_is_better=False, checked="Steward's includes PostgreSQL's")
            if BASELINE in got and "Steward" in got:
                now, before = got["Steward"], got[BASELINE]

                def change(key, now=now, before=before):
                    a = statistics.median(r[key] for r in now)
                    b = statistics.median(r[key] for r in before)
                    return (a / b - 1) * 100

                changes.append(f"{where}: requests/s {change('rps'):+.1f}%, p50 latency "
                               f"{change('p50'):+.1f}%, server CPU per request {change('cpu_ms'):+.1f}% "
                               f"(+ database {change('db_cpu_ms'):+.1f}%)")
    table.print()
    steward_cpu = [r["cpu_ms"] for s, _, _, r in results if s == "Steward"]
    if observed_us is not None and steward_cpu:
        share = observed_us / 1000 / statistics.median(steward_cpu) * 100
        print(f"\nServing observers (latency and failure logging), timed in process: {observed_us:.2f} µs "
              f"of CPU per request, {share:.2f}% of Steward's median server CPU per request")
    if changes:
        print(f"\nSteward against {BASELINE} (the target: at most 5% fewer requests/s, 5% more latency):")
        for line in changes:
            print("  " + line)
    for n_rows in rows:
        s = by_key.get(("Steward", max(clients), n_rows))
        if s:
            p99 = statistics.median(r["p99"] for r in s)
            p50 = statistics.median(r["p50"] for r in s)
            print(f"Steward p99/p50 at {max(clients)} clients, {n_rows} rows: {p99 / p50:.2f}")
    if any(r["wrong"] or r["errors"] for _, _, _, r in results):
        raise SystemExit("Some answers were errors or predicted other labels than scikit-learn: see above")


def _header() -> str:
    return (f"{'server':15} {'clients':>7} {'rows':>5} {'requests':>9} {'errors':>6} {'wrong':>6} "
            f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'server CPU ms/req':>18} {'+ db CPU ms/req':>16} "
            "connections per process")


def _row(server, c, n_rows, r) -> str:
    return (f"{server:15} {c:>7} {n_rows:>5} {r['requests']:>9} {r['errors']:>6} {r['wrong']:>6} "
            f"{r['rps']:>8.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['cpu_ms']:>18.2f} "
            f"{r['db_cpu_ms']:>16.2f} {r['spread']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--setup-only"]:
        _setup_only(*sys.argv[2:5])
    else:
        main()
