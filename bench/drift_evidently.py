"""Evidently's data-drift report on two Parquet files, for bench/drift.py to set beside Steward's.

    .venv-evidently/bin/python bench/drift_evidently.py REFERENCE CURRENT [ROWS]

Runs in its own virtualenv (`make bench-evidently`: Evidently 0.7 needs pandas < 3, Steward
runs pandas 3) and imports nothing of Steward. Reads the first ROWS rows of each file (0: all;
the rows are independent draws, so the first ones are a random sample), runs a Report with
DataDriftPreset (its default method per column: for more than 1,000 rows, Wasserstein distance
normed for numbers and Jensen-Shannon distance for categories, drift at 0.1), and prints one JSON
line: the report's wall and CPU seconds, the process's peak memory, and each column's verdict.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def read(path: str, rows: int):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    if rows:
        # Only the row groups needed, so the sample's memory is what Evidently sees.
        batches = []
        taken = 0
        for batch in source.iter_batches(batch_size=min(rows, 65_536)):
            batches.append(batch.slice(0, rows - taken))
            taken += len(batches[-1])
            if taken >= rows:
                break
        table = pa.Table.from_batches(batches)
    else:
        table = source.read()
    frame = table.to_pandas()
    for name in frame.columns:
        if str(frame[name].dtype) == "category":
            frame[name] = frame[name].astype(object)
    return frame


def drifted(metric: dict) -> bool:
    """A p-value drifts below its threshold, a distance at or above it (Evidently's rule)."""
    config = metric["config"]
    method, threshold, value = config.get("method") or "", config["threshold"], metric["value"]
    return bool(value < threshold if "p_value" in method else value >= threshold)


def main() -> None:
    reference_path, current_path = sys.argv[1:3]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    started, cpu_started = time.perf_counter(), time.process_time()
    reference, current = read(reference_path, rows), read(current_path, rows)
    numerical = [c for c in reference.columns if reference[c].dtype.kind in "iuf"]
    categorical = [c for c in reference.columns if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    found = snapshot.dict()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    columns = {}
    for metric in found["metrics"]:
        if metric["config"].get("type", "").endswith(":ValueDrift"):
            columns[metric["config"]["column"]] = {
                "method": metric["config"]["method"],
                "value": float(metric["value"]),
                "drifted": drifted(metric),
            }
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": len(reference),
        "columns": columns,
        "drifted": sorted(c for c, v in columns.items() if v["drifted"]),
    }))


if __name__ == "__main__":
    main()
