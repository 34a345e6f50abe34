"""What a monitor compares: the reference (a dataset version, read a column at a time) and the
current window (served predictions of the versions its alias pointed at, from the prediction log).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from datasets import files as dataset_files
from datasets import services as datasets
from datasets.models import DatasetVersion
from monitoring.models import Monitor
from registry.models import AliasEvent, AliasEventKind, ModelAlias, PredictionLog

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    import pyarrow as pa

LOG_CHUNK = 2000


def _column_array(column: pa.ChunkedArray) -> np.ndarray:
    import pyarrow as pa
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        # Missing values become NaN: integers with gaps are read as floats.
        return column.to_numpy() if column.null_count == 0 else column.cast(pa.float64()).to_numpy()
    # Text (and booleans) as a Categorical: codes and a small table of values, built by
    # Arrow's dictionary encoding instead of one Python object per row.
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return column.to_pandas().array


class DatasetColumns:
    """A dataset version read one column at a time: Parquet reads only that column; a CSV is
    parsed once (the needed columns only, kept in Arrow's compact form) and handed out by column."""

    def __init__(self, version: DatasetVersion, names: list[str]):
        self.version = version
        self.names = [n for n in names if n in {c["name"] for c in version.columns}]
        self.rows = int(version.row_count)
        self._table: pa.Table | None = None
        self._lock = threading.Lock()

    def column(self, name: str) -> np.ndarray:
        import pyarrow.parquet as pq
        if self.version.format == "parquet":
            with datasets.version_path(self.version) as path:
                return _column_array(pq.read_table(path, columns=[name]).column(name))
        with self._lock:  # two features are read at a time (services.drift_compute)
            if self._table is None:
                self._load()
        return _column_array(self._table.column(name))

    def _load(self) -> None:
        with datasets.version_path(self.version) as path:
            self._table = dataset_files.read_table(
                path,
                fmt=self.version.format,
                read_options=self.version.read_options,
                columns=self.version.columns,
                include=self.names,
            )

    def close(self) -> None:
        self._table = None


@dataclass
class Window:
    """The current window read from the prediction log: columns by name, oldest row first."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    predictions: np.ndarray | None = None
    # Per logged request: (request_id, first row's offset, rows), to join labels.
    requests: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)
    created: np.ndarray | None = None  # each row's time, as epoch seconds
    version_ids: list[int] = field(default_factory=list)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    rows: int = 0

    def column(self, name: str) -> np.ndarray:
        return self.columns.get(name, np.full(self.rows, np.nan))


def alias_intervals(
    monitor: Monitor, *, until: dt.datetime
) -> list[tuple[int, dt.datetime | None, dt.datetime]]:
    """(version id, from, to) for each stretch of time the alias pointed at a version.

    The prediction log stores versions, not aliases, so the alias's history decides
    which predictions were the alias's.
    """
    events = AliasEvent.objects.filter(
        model=monitor.model, alias=monitor.alias, kind__in=[AliasEventKind.SET, AliasEventKind.REMOVED]
    ).order_by("created_at", "id")
    intervals: list[tuple[int, dt.datetime | None, dt.datetime]] = []
    current: tuple[int, dt.datetime | None] | None = None
    for event in events:
        if current is not None:
            intervals.append((current[0], current[1], event.created_at))
            current = None
        if event.kind == AliasEventKind.SET and event.version_id:
            current = (event.version_id, event.created_at)
    if current is not None:
        intervals.append((current[0], current[1], until))
    if not intervals:
        # An alias set before its moves were recorded: its version now, for all time.
        alias = ModelAlias.objects.filter(model=monitor.model, name=monitor.alias).first()
        if alias is not None:
            intervals.append((alias.version_id, None, until))
    return intervals


def window_read(monitor: Monitor, *, names: list[str], now: dt.datetime | None = None) -> Window:
    now = now or timezone.now()
    cap = settings.MONITOR_WINDOW_MAX_ROWS
    limit = min(cap, monitor.window_predictions) if monitor.window_predictions else cap
    start = now - dt.timedelta(hours=monitor.window_hours) if monitor.window_hours else None
    if start is None and not monitor.window_predictions:
        start = monitor.created_at
    intervals = alias_intervals(monitor, until=now)
    window = Window(end=now)
    if not intervals:
        return window
    q = Q()
    for version_id, begin, end in intervals:
        part = Q(model_version_id=version_id, created_at__lt=end)
        if begin is not None:
            part &= Q(created_at__gte=begin)
        q |= part
    logs = PredictionLog.objects.filter(q)
    if start is not None:
        logs = logs.filter(created_at__gte=start)
    # Newest first until the window is full, then put back in time order.
    records: list[tuple] = []
    total = 0
    fields = ("request_id", "rows", "inputs", "predictions", "created_at", "model_version_id")
    for record in logs.order_by("-created_at", "-id").values_list(*fields).iterator(chunk_size=LOG_CHUNK):
        records.append(record)
        total += record[1]
        if total >= limit:
            break
    records.reverse()
    if not records:
        return window
    # A request that straddles the limit is kept whole, so a label's (request, row) always finds it.
    pieces: dict[str, list[Any]] = {n: [] for n in names}
    predictions: list[Any] = []
    times: list[np.ndarray] = []
    offset = 0
    versions: set[int] = set()
    for request_id, rows, inputs, preds, created_at, version_id in records:
        if request_id in window.requests:
            # A request id logged again is a retry of the same request: the first record counts.
            continue
        for name in names:
            values = inputs.get(name)
            pieces[name].extend(values if values is not None else [None] * rows)
        predictions.extend(preds)
        times.append(np.full(rows, created_at.timestamp()))
        window.requests[request_id] = (offset, rows)
        offset += rows
        versions.add(version_id)
    window.rows = offset
    for name in names:
        window.columns[name] = _array(pieces.pop(name))
    window.predictions = _array(predictions)
    window.created = np.concatenate(times)
    window.start = records[0][4]
    window.version_ids = sorted(versions)
    return window


def _array(values: list[Any]) -> np.ndarray:
    """Numbers as a float array (None as NaN); anything else (text, booleans, mixed) as objects."""
    import pandas as pd
    objects = np.array(values, dtype=object)
    # One pass in C over the values: numbers only (or nothing but gaps)?
    if pd.api.types.infer_dtype(objects, skipna=True) in (
        "floating",
        "integer",
        "mixed-integer-float",
        "empty",
    ):
        return np.array(values, dtype=float)
    return objects


def reference_for(monitor: Monitor) -> DatasetVersion | None:
    """The chosen reference, else the training dataset version of the alias's version now."""
    if monitor.reference_dataset_version_id:
        return monitor.reference_dataset_version
    alias = (
        ModelAlias.objects.filter(model=monitor.model, name=monitor.alias)
        .select_related("version__training_dataset_version")
        .first()
    )
    return alias.version.training_dataset_version if alias else None
