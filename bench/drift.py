"""Steward's drift comparison on 1,000,000 reference rows against 1,000,000 current rows.

    python bench/drift.py [--rows 1000000] [--keep DIR]

Makes two Parquet files of 50 features (40 numerical, 10 categorical), the current one
with 5 features shifted (3 numerical, 2 categorical), then runs the drift job's
comparison (monitoring.services.drift_compute: one column of each side at a time,
KS + PSI + Wasserstein, chi-square + PSI + unseen share) in a fresh process, and prints
its seconds (wall clock and CPU), its peak memory (the process's maximum resident set size, interpreter and
libraries included) and which features it flagged.

Evidently's data-drift report is not run here (it needs pandas < 3, so its own
virtualenv); the issue measured it on this machine at about 320 s and 3.4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIFTED = ["num_00", "num_01", "num_02", "cat_00", "cat_01"]


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="folder to keep (and reuse) the Parquet files in")
    parser.add_argument("--compare", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
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
    print(
        f"{'Evidently 0.7.23':24}{'~320':>10}{'':>10}{'~3400':>10}  (the issue's measurement; not run here)"
    )
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} cores; CPU s is fairer when shared)")
    if not args.keep:
        for path in (reference, current):
            path.unlink()
        folder.rmdir()
    if not exact:
        sys.exit(1)


if __name__ == "__main__":
    main()
