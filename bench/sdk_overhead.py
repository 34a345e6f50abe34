"""Client overhead: log_metric calls in a training loop, Steward's SDK against MLflow's client.

Run by hand (not in CI):

    make bench-deps                              # MLflow in its own .venv-bench
    .venv/bin/python bench/sdk_overhead.py                          # 100,000 calls each
    .venv/bin/python bench/sdk_overhead.py --mlflow-sync-calls 100000  # no extrapolation

Both servers are started here on fresh SQLite files (Steward under gunicorn,
MLflow with ``--workers 1``, its fastest on this machine) and stopped at the
end. Each client runs in its own process: Steward's from .venv, MLflow's from
the MLflow virtualenv, in each of MLflow's two modes:

- asynchronous (``MLFLOW_ENABLE_ASYNC_LOGGING=true``, ``synchronous=False``)
  with ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1``: calls are queued and a
  background thread sends them in batches of up to 1,000, as Steward's SDK
  does; the run's end waits until all are sent. (Without the buffering
  setting MLflow sends one request per queued call from 10 threads: 5,000
  calls took minutes here, so its best asynchronous mode is the buffered one);
- synchronous (MLflow's default): each call is one request.

Measured per client: calls per second inside the loop, and seconds from the
loop's start until every point is stored on the server (the run's end, which
flushes a background sender). Every stored history is read back and must hold
exactly the values logged, step by step. MLflow's synchronous mode sends a
request per call, so it is timed on ``--mlflow-sync-calls`` calls (2,000 by
default) and its time to store the full count is extrapolated from its rate;
the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Table, print_load  # noqa: E402
from servers import PYTHON, mlflow_binary, mlflow_server, steward_server  # noqa: E402

TARGET_LOOP = 100.0
TARGET_STORED = 10.0


def value(step: int) -> float:
    return 1.0 / (step + 1)


def check(points: list[tuple[int, float]], calls: int) -> bool:
    """The stored history is exactly the points logged: each step once, with its value."""
    return sorted(points) == [(step, value(step)) for step in range(calls)]


def client_steward(url: str, token: str, calls: int) -> dict:
    import steward

    steward.configure(url=url, token=token, spool_dir=os.path.join(os.environ["HOME"], "spool"))
    run = steward.start_run(project="bench", experiment="sdk-overhead", capture=False)
    started = time.perf_counter()
    for step in range(calls):
        run.log_metric("loss", value(step), step=step)
    loop = time.perf_counter() - started
    run.end()
    stored = time.perf_counter() - started
    if run.spooled:
        raise SystemExit("Steward spooled batches: the server did not keep up, the timing is not valid")
    with steward.Client() as client:
        points = [(p["step"], p["value"]) for p in client.get_metric_history(run.id, "loss")]
    return {"loop_s": loop, "stored_s": stored, "calls": calls, "count": len(points),
            "exact": check(points, calls)}


def client_mlflow(url: str, calls: int, asynchronous: bool) -> dict:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("sdk-overhead")
    with mlflow.start_run() as active:
        started = time.perf_counter()
        for step in range(calls):
            mlflow.log_metric("loss", value(step), step=step, synchronous=not asynchronous)
        loop = time.perf_counter() - started
    # Leaving the block ends the run, which waits until every queued call is sent.
    stored = time.perf_counter() - started
    history = MlflowClient(url).get_metric_history(active.info.run_id, "loss")
    points = [(m.step, m.value) for m in history]
    return {"loop_s": loop, "stored_s": stored, "calls": calls, "count": len(points),
            "exact": check(points, calls)}


def run_client(python: str, args: list[str], env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [python, __file__, *args], capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise SystemExit(f"client {args[:2]} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--mlflow-sync-calls", type=int, default=2_000,
                        help="log_metric calls for MLflow's synchronous mode; its time is extrapolated")
    parser.add_argument("--client", choices=["steward", "mlflow", "mlflow-async"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.client == "steward":
        print(json.dumps(client_steward(args.url, args.token, args.calls)))
        return
    if args.client in ("mlflow", "mlflow-async"):
        print(json.dumps(client_mlflow(args.url, args.calls, args.client == "mlflow-async")))
        return

    print_load("before")
    sync_calls = min(args.mlflow_sync_calls, args.calls)
    mlflow_python = str(Path(mlflow_binary()).parent / "python")
    # A throw-away HOME keeps ~/.steward (config, spool) and ~/.mlflow out of the benchmark.
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home, steward_server() as steward_srv:
        print(f"Steward SDK: {args.calls:,} log_metric calls ...", flush=True)
        st = run_client(str(PYTHON), ["--client", "steward", "--url", steward_srv.url,
                                      "--token", steward_srv.token, "--calls", str(args.calls)],
                        env={"HOME": home})
    results = {"Steward SDK": st}
    for label, mode, calls, env in (
        ("MLflow async", "mlflow-async", args.calls,
         {"MLFLOW_ENABLE_ASYNC_LOGGING": "true", "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": "1"}),
        ("MLflow sync", "mlflow", sync_calls, {}),
    ):
        with tempfile.TemporaryDirectory(prefix="bench-home-") as home, mlflow_server() as mlflow_srv:
            print(f"{label}: {calls:,} log_metric calls ...", flush=True)
            results[label] = run_client(mlflow_python, ["--client", mode, "--url", mlflow_srv.url,
                                                        "--calls", str(calls)], env={"HOME": home, **env})
    print_load("after")

    for name, result in results.items():
        if result["count"] != result["calls"] or not result["exact"]:
            raise SystemExit(f"{name} stored {result['count']} of {result['calls']} points, "
                             f"{'exactly' if result['exact'] else 'not'} the values logged")

    table = Table(f"{args.calls:,} log_metric calls, one run, servers on this machine, SQLite",
                  columns=tuple(results))
    table.add("calls/s in the loop", "calls/s",
              {name: r["calls"] / r["loop_s"] for name, r in results.items()},
              higher_is_better=True, checked="stored history = values logged, each step once")
    stored = {name: r["stored_s"] * args.calls / r["calls"] for name, r in results.items()}
    table.add("s until every point is stored", "s", stored, higher_is_better=False,
              checked="(same)")
    table.print()
    if sync_calls != args.calls:
        print(f"MLflow sync measured on {sync_calls:,} calls, its time scaled to {args.calls:,}")
    loop_ratio = table.ratio(table.rows[0])
    stored_ratio = table.ratio(table.rows[1])
    print(f"loop: Steward {loop_ratio:,.1f}x MLflow's best mode (target >= {TARGET_LOOP:.0f}x: "
          f"{'met' if loop_ratio >= TARGET_LOOP else 'NOT met'})")
    print(f"until stored: Steward {stored_ratio:,.1f}x MLflow's best mode (target >= {TARGET_STORED:.0f}x: "
          f"{'met' if stored_ratio >= TARGET_STORED else 'NOT met'})")
    for name, r in results.items():
        print(f"{name} per call in the loop: {1e6 * r['loop_s'] / r['calls']:,.1f} us")


if __name__ == "__main__":
    main()
