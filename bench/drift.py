"""Steward's drift comparison on 1,000,000 reference rows against 1,000,000 current rows.

    python bench/drift.py [--rows 1000000] [--keep DIR] [--served 100000] [--evidently-rows N]

Makes two Parquet files of 50 features (40 numerical, 10 categorical), the current one
with 5 features shifted (3 numerical, 2 categorical), then runs the drift job's
comparison (monitoring.services.drift_compute: one column of each side at a time,
KS + PSI + Wasserstein, chi-square + PSI + unseen share) in a fresh process, and prints
its seconds (wall clock and CPU), its peak memory (the process's maximum resident set size, interpreter and
libraries included) and which features it flagged.

With --served N it also runs the whole drift job (a Job row, the monitor's window read
from the prediction log, the report and alerts stored) over N served predictions of the
demo model (`make run`'s monitoring demo), in a database of its own
(BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/steward_drift_bench).

Beside it, Evidently's data-drift report (DataDriftPreset) on the same Parquet files, in
its own virtualenv (`make bench-evidently` makes .venv-evidently: Evidently needs pandas < 3)
and its own process (bench/drift_evidently.py): its wall and CPU seconds, its peak memory,
its per-column verdicts, and whether its verdicts on the shifted features agree with
Steward's. With --evidently-rows N it reads only the first N rows of each file (the rows are
independent draws) and the table says it was sampled; --evidently-timeout stops it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIFTED = ["num_00", "num_01", "num_02", "cat_00", "cat_01"]
EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"


def make(path: Path, rows: int, seed: int, shifted: bool) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(40):
        values = rng.normal(i, 1 + i % 5, rows)
        if shifted and f"num_{i:02d}" in SHIFTED:
            values += 0.5 * (1 + i % 5)  # half a standard deviation
        columns[f"num_{i:02d}"] = values
    levels = np.array([f"level_{k}" for k in range(8)])
    base = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03])
    for i in range(10):
        p = base[::-1] if shifted and f"cat_{i:02d}" in SHIFTED else base
        columns[f"cat_{i:02d}"] = pa.array(levels[rng.choice(8, rows, p=p)]).dictionary_encode()
    pq.write_table(pa.table(columns), path, row_group_size=256_000)


def compare(reference: str, current: str) -> None:
    """Runs in a fresh process, so its peak memory is the comparison's own."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import pyarrow.parquet as pq

    from monitoring.models import DEFAULT_THRESHOLDS
    from monitoring.services import drift_compute
    from monitoring.windows import _column_array

    class ParquetColumns:
        def __init__(self, path):
            self.path = path

        def column(self, name):
            return _column_array(pq.read_table(self.path, columns=[name]).column(name))

    names = pq.read_schema(reference).names
    started = time.perf_counter()
    cpu_started = time.process_time()
    found = drift_compute(
        reference=ParquetColumns(reference),
        current=ParquetColumns(current),
        features=names,
        thresholds=DEFAULT_THRESHOLDS.__getitem__,
    )
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": peak_mb,
                "drifted": found["drifted"],
                "dataset_drift": found["dataset_drift"],
            }
        )
    )


def served(rows: int) -> None:
    """The drift job over ``rows`` served predictions from the prediction log (fresh process)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "mlplatform.settings"
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["PREDICTION_LOG_BACKGROUND"] = "false"
    # Jobs the set-up queues (a dataset profile) go to a broker folder nobody reads; the timed
    # job runs here, in this process.
    os.environ["CELERY_BROKER_URL"] = "filesystem://"
    sys.path.insert(0, str(ROOT))
    import io
    import uuid

    import django

    django.setup()
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import Project
    from accounts.services import project_create
    from monitoring import services
    from monitoring.management.commands.monitoring_demo import FEATURES, credit_frame
    from monitoring.models import Monitor
    from registry.models import ModelAlias, PredictionLog
    from registry.prediction_log import Entry, prediction_log_write

    call_command("migrate", interactive=False, verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    if not Project.objects.filter(slug="demo").exists():
        project_create(user=user, slug="demo")
    call_command("monitoring_demo", owner="bench", stdout=io.StringIO())
    monitor = Monitor.objects.get(project__slug="demo")
    version_id = ModelAlias.objects.get(model=monitor.model, name=monitor.alias).version_id
    Monitor.objects.filter(pk=monitor.pk).update(window_predictions=rows, window_hours=None, alert_emails=[])
    PredictionLog.objects.filter(model_version_id=version_id).delete()
    frame = credit_frame(rows, seed=7, drifted=True)
    now = timezone.now()
    entries = [
        Entry(
            version_id=version_id,
            request_id=uuid.uuid4().hex,
            created_at=now,
            rows=len(part),
            names=FEATURES,
            columns={n: part[n].tolist() for n in FEATURES},
            predictions=np.zeros(len(part), dtype=int),
        )
        for part in (frame.iloc[i : i + 100] for i in range(0, rows, 100))
    ]
    prediction_log_write(entries)
    monitor.refresh_from_db()
    job = services.monitor_run_start(monitor=monitor, user=user)
    started, cpu_started = time.perf_counter(), time.process_time()
    services.drift_report_compute(job_id=job.pk)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    job.refresh_from_db()
    from monitoring.models import MonitorReport

    report = MonitorReport.objects.filter(pk=(job.result or {}).get("report_id")).first()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": peak_mb,
                "status": job.status,
                "result": job.result,
                "current_rows": report.current_rows if report else 0,
                "reference_rows": report.reference_rows if report else 0,
            }
        )
    )


def run_evidently(args, reference: Path, current: Path) -> dict | None:
    """Evidently's report on the same files, in its own virtualenv and process."""
    if not args.evidently_python:
        print(f"{'Evidently':24}{'':>30}  not run (--evidently-python '')")
        return None
    python = Path(args.evidently_python)
    if not python.exists():
        print(f"{'Evidently':24}{'':>30}  not run: no {python} (make bench-evidently)")
        return None
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('evidently'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    try:
        out = subprocess.run(
            [str(python), str(ROOT / "bench" / "drift_evidently.py"), str(reference), str(current),
             str(args.evidently_rows)],
            check=True, capture_output=True, text=True, timeout=args.evidently_timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {args.evidently_timeout:.0f} s: try --evidently-rows"}
    except subprocess.CalledProcessError as exc:
        return {"error": f"failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else exc}"}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "version": version}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="folder to keep (and reuse) the Parquet files in")
    parser.add_argument("--served", type=int, default=0, help="also time the job over N served predictions")
    parser.add_argument("--evidently-rows", type=int, default=0,
                        help="rows of each file Evidently reads (0: all of them)")
    parser.add_argument("--evidently-timeout", type=float, default=1800,
                        help="seconds before Evidently is stopped")
    parser.add_argument("--evidently-python", default=str(EVIDENTLY_PYTHON),
                        help="python of a virtualenv with requirements-evidently.txt ('' skips Evidently)")
    parser.add_argument("--compare", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--served-run", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    if args.served_run:
        served(args.served_run)
        return
    folder = Path(args.keep or tempfile.mkdtemp(prefix="steward-drift-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    reference, current = folder / f"reference-{args.rows}.parquet", folder / f"current-{args.rows}.parquet"
    if not reference.exists():
        make(reference, args.rows, seed=1, shifted=False)
    if not current.exists():
        make(current, args.rows, seed=2, shifted=True)
    out = subprocess.run(
        [sys.executable, __file__, "--compare", str(reference), str(current)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    exact = sorted(result["drifted"]) == sorted(SHIFTED)
    print(f"{args.rows:,} reference rows x 50 features against {args.rows:,} current rows, 5 shifted")
    print(f"{'':24}{'seconds':>10}{'CPU s':>10}{'peak MB':>10}  flagged")
    verdict = "exactly the shifted ones" if exact else "NOT the shifted set"
    figures = f"{result['seconds']:>10.1f}{result['cpu_seconds']:>10.1f}{result['peak_mb']:>10.0f}"
    print(f"{'Steward drift job':24}{figures}  {', '.join(sorted(result['drifted']))} ({verdict})")
    evidently = run_evidently(args, reference, current)
    if evidently is None:
        pass
    elif "error" in evidently:
        print(f"{'Evidently':24}{'':>30}  {evidently['error']}")
    else:
        sampled = evidently["rows"] < args.rows
        name = f"Evidently {evidently['version']}" + (f", {evidently['rows']:,} rows" if sampled else "")
        figures = "".join(f"{evidently[k]:>10.{d}f}" for k, d in
                          (("seconds", 1), ("cpu_seconds", 1), ("peak_mb", 0)))
        print(f"{name:24}{figures}  {', '.join(evidently['drifted'])}")
        if sampled:
            print(f"  (Evidently was SAMPLED: the first {evidently['rows']:,} rows of each file, not "
                  f"{args.rows:,}; Steward's figures are for the full files)")
        print("\nPer shifted feature: Steward's verdict, Evidently's verdict (its method and value)")
        for name in SHIFTED:
            theirs = evidently["columns"][name]
            ours = name in result["drifted"]
            verdicts = [("drift" if flagged else "no drift") for flagged in (ours, theirs["drifted"])]
            note = "" if ours == theirs["drifted"] else "  DISAGREE"
            method = f"{theirs['method']} {theirs['value']:.4f}"
            print(f"  {name:8} {verdicts[0]:>9} {verdicts[1]:>9}  ({method}){note}")
        agree = all((n in result["drifted"]) == evidently["columns"][n]["drifted"] for n in SHIFTED)
        others = sorted(set(evidently["drifted"]) ^ set(result["drifted"]))
        print(f"Verdicts on the shifted features {'agree' if agree else 'DISAGREE'}; "
              f"other features flagged by only one: {', '.join(others) or 'none'}")
        print(f"Wall time: Steward {evidently['seconds'] / result['seconds']:.1f}x faster"
              + (" (against a sampled Evidently run)" if sampled else ""))
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores; CPU s is fairer when shared)")
    if args.served:
        url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/steward_drift_bench")
        # A fresh database each time: its artifacts live in this run's own folder.
        for command in ("dropdb", "createdb"):
            subprocess.run(
                [command, "-h", "127.0.0.1", "-U", "postgres", url.rsplit("/", 1)[1]], capture_output=True
            )
        var_dir = tempfile.mkdtemp(prefix="steward-bench-")
        env = {**os.environ, "DATABASE_URL": url, "STEWARD_VAR_DIR": var_dir}
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--served-run", str(args.served)],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=env,
            )
        finally:
            shutil.rmtree(var_dir, ignore_errors=True)
        job = json.loads(out.stdout.strip().splitlines()[-1])
        result = job["result"] or {}
        print(
            f"{f'job, {args.served:,} served':24}{job['seconds']:>10.1f}{job['cpu_seconds']:>10.1f}"
            f"{job['peak_mb']:>10.0f}  {job['status']}, dataset drift: {result.get('dataset_drift')} "
            f"({job['current_rows']:,} predictions read from the prediction log, "
            f"{job['reference_rows']:,} reference rows)"
        )
    if not args.keep:
        for path in (reference, current):
            path.unlink()
        folder.rmdir()
    if not exact:
        sys.exit(1)


if __name__ == "__main__":
    main()
