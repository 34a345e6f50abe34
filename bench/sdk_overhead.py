"""Client overhead: 100,000 log_metric calls in a training loop, Steward SDK against MLflow's client.

Run by hand (not in CI):

    make bench-deps                              # MLflow in its own .venv-bench
    .venv/bin/python bench/sdk_overhead.py                     # 100,000 calls each
    .venv/bin/python bench/sdk_overhead.py --mlflow-calls 5000 # MLflow's rate on fewer calls

Both servers are started here on fresh SQLite files (Steward under gunicorn,
MLflow with ``--workers 1``, its fastest on this machine) and stopped at the
end. Each client runs in its own process: Steward's from .venv, MLflow's
(default, synchronous mode) from the MLflow virtualenv. Measured per client:
calls per second inside the loop, and seconds from the loop's start until
every point is stored on the server (Steward: the run's end, which flushes
the background sender; MLflow: the loop itself, each call being a request).
Both stored histories are read back and counted.
With ``--mlflow-calls`` below ``--calls``, MLflow's time to store the full
count is extrapolated from its measured rate, and the table says so.
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
from servers import PYTHON, mlflow_binary, mlflow_server, steward_server  # noqa: E402

TARGET_LOOP = 100.0
TARGET_STORED = 10.0


def client_steward(url: str, token: str, calls: int) -> dict:
    import steward

    steward.configure(url=url, token=token, spool_dir=os.path.join(os.environ["HOME"], "spool"))
    run = steward.start_run(project="bench", experiment="sdk-overhead", capture=False)
    started = time.perf_counter()
    for step in range(calls):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    loop = time.perf_counter() - started
    run.end()
    stored = time.perf_counter() - started
    if run.spooled:
        raise SystemExit("Steward spooled batches: the server did not keep up, the timing is not valid")
    with steward.Client() as client:
        count = len(client.get_metric_history(run.id, "loss"))
    return {"loop_s": loop, "stored_s": stored, "calls": calls, "count": count}


def client_mlflow(url: str, calls: int) -> dict:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("sdk-overhead")
    with mlflow.start_run() as active:
        started = time.perf_counter()
        for step in range(calls):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        loop = time.perf_counter() - started
    stored = time.perf_counter() - started
    count = len(MlflowClient(url).get_metric_history(active.info.run_id, "loss"))
    return {"loop_s": loop, "stored_s": stored, "calls": calls, "count": count}


def run_client(python: str, args: list[str], env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [python, __file__, *args], capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise SystemExit(f"client {args[:2]} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--mlflow-calls", type=int, default=None,
                        help="log_metric calls for MLflow (default: --calls); its rate is extrapolated")
    parser.add_argument("--client", choices=["steward", "mlflow"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.client == "steward":
        print(json.dumps(client_steward(args.url, args.token, args.calls)))
        return
    if args.client == "mlflow":
        print(json.dumps(client_mlflow(args.url, args.calls)))
        return

    mlflow_calls = args.mlflow_calls or args.calls
    mlflow_python = str(Path(mlflow_binary()).parent / "python")
    # A throw-away HOME keeps ~/.steward (config, spool) and ~/.mlflow out of the benchmark.
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home, steward_server() as steward_srv:
        print(f"Steward: {args.calls:,} log_metric calls ...", flush=True)
        st = run_client(str(PYTHON), ["--client", "steward", "--url", steward_srv.url,
                                      "--token", steward_srv.token, "--calls", str(args.calls)],
                        env={"HOME": home})
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home, mlflow_server() as mlflow_srv:
        print(f"MLflow:  {mlflow_calls:,} log_metric calls (synchronous, one request each) ...", flush=True)
        ml = run_client(mlflow_python, ["--client", "mlflow", "--url", mlflow_srv.url,
                                        "--calls", str(mlflow_calls)], env={"HOME": home})

    for name, result in (("Steward", st), ("MLflow", ml)):
        if result["count"] != result["calls"]:
            raise SystemExit(f"{name} stored {result['count']} of {result['calls']} points")

    st_rate = st["calls"] / st["loop_s"]
    ml_rate = ml["calls"] / ml["loop_s"]
    extrapolated = ml["calls"] != args.calls
    ml_stored = ml["stored_s"] * args.calls / ml["calls"]
    note = f" (measured on {ml['calls']:,} calls, scaled to {args.calls:,})" if extrapolated else ""

    print(f"\n{args.calls:,} log_metric calls, one run, servers on this machine (SQLite){note}")
    header = f"{'client':<34} {'calls/s in loop':>16} {'s until all stored':>19} {'points stored':>14}"
    print(header)
    print("-" * len(header))
    print(f"{'Steward SDK (background batches)':<34} {st_rate:>16,.0f} {st['stored_s']:>19,.2f} "
          f"{st['count']:>14,}")
    print(f"{'MLflow client (synchronous)':<34} {ml_rate:>16,.0f} {ml_stored:>19,.2f} "
          f"{ml['count']:>14,}")
    loop_ratio = st_rate / ml_rate
    stored_ratio = ml_stored / st["stored_s"]
    print(f"\nloop: Steward {loop_ratio:,.0f}x MLflow's rate (target >= {TARGET_LOOP:.0f}x: "
          f"{'met' if loop_ratio >= TARGET_LOOP else 'NOT met'})")
    print(f"until stored: Steward {stored_ratio:,.1f}x faster (target >= {TARGET_STORED:.0f}x: "
          f"{'met' if stored_ratio >= TARGET_STORED else 'NOT met'})")
    print(f"MLflow per call: {1000 * ml['loop_s'] / ml['calls']:.2f} ms; "
          f"Steward per call in the loop: {1e6 * st['loop_s'] / st['calls']:.2f} us")


if __name__ == "__main__":
    main()
