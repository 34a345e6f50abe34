"""How prediction-log entries reach the database: one interface, ``PredictionLogWriter``,
with one implementation per database, chosen once from the connection's vendor
(``prediction_log_writer()``).

PostgreSQL's sends a batch with one COPY; SQLite's with one executemany. Both
write the same records: an entry's arrays become the same JSON text on either.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from registry.models import PredictionLog


@dataclass
class Entry:
    version_id: int
    request_id: str  # 32 hex digits: a UUID both PostgreSQL and SQLite read
    created_at: dt.datetime
    rows: int
    # The logged columns (PII already left out), as ``names`` and either one
    # float matrix with a column per name (all-number requests) or a list of
    # values per name.
    names: list[str]
    columns: dict[str, list] | None = None
    matrix: Any = None
    predictions: Any = None  # an array or a list, one per row
    probabilities: Any = None  # an [rows, classes] array, or None


def _clean(value):
    # JSON (and PostgreSQL's jsonb) has no NaN or infinity; a missing value is stored as null.
    if type(value) is float and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _json(value) -> str:
    """JSON text for jsonb; orjson writes NaN and infinities (in lists and arrays) as null."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        # What orjson refuses, e.g. an integer beyond 64 bits sent for a number column.
        if isinstance(value, np.ndarray):
            value = value.tolist()
        return json.dumps(_clean(value), allow_nan=False, separators=(",", ":"), default=str)


def _rows(entries: list[Entry]):
    for entry in entries:
        if entry.matrix is not None:
            # Columns of a C-ordered copy, so each is one contiguous array for orjson.
            by_column = np.ascontiguousarray(entry.matrix.T)
            inputs = dict(zip(entry.names, by_column, strict=True))
        else:
            inputs = entry.columns or {}
        yield (
            entry.version_id, entry.request_id, entry.rows, _json(inputs), _json(entry.predictions),
            None if entry.probabilities is None else _json(entry.probabilities), entry.created_at,
        )


class PredictionLogWriter:
    """Writes entries in the caller's transaction (or autocommit) and answers how many
    predictions (input rows) they hold; a database error is raised to the caller."""

    vendor = ""
    _table = PredictionLog._meta.db_table
    _columns = "(model_version_id, request_id, rows, inputs, predictions, probabilities, created_at)"

    def entries_write(self, entries: list[Entry]) -> int:
        if entries:
            with connection.cursor() as cursor:
                self._write(cursor, entries)
        return sum(entry.rows for entry in entries)

    def _write(self, cursor, entries: list[Entry]) -> None:
        raise NotImplementedError


class PostgresPredictionLogWriter(PredictionLogWriter):
    vendor = "postgresql"

    def _write(self, cursor, entries: list[Entry]) -> None:
        with cursor.cursor.copy(f"COPY {self._table} {self._columns} FROM STDIN") as copy:
            for row in _rows(entries):
                copy.write_row(row)
                # Encoding and buffering a batch holds the GIL for milliseconds, and
                # libpq rarely blocks to release it: hand it to a waiting request
                # thread after each record instead of at the interpreter's 5 ms switch.
                time.sleep(0)


class SqlitePredictionLogWriter(PredictionLogWriter):
    vendor = "sqlite"

    def _write(self, cursor, entries: list[Entry]) -> None:
        # In autocommit each INSERT of executemany commits on its own: a batch refused halfway
        # would leave its first records written, and be written again when it is retried.
        with transaction.atomic(savepoint=False):
            cursor.executemany(
                f"INSERT INTO {self._table} {self._columns} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                list(_rows(entries)))


_WRITERS = {writer.vendor: writer for writer in (PostgresPredictionLogWriter, SqlitePredictionLogWriter)}


@functools.cache
def _writer_for(vendor: str) -> PredictionLogWriter:
    try:
        return _WRITERS[vendor]()
    except KeyError:
        raise ImproperlyConfigured(
            f"Prediction logs are written to PostgreSQL or SQLite, not to {vendor!r}.") from None


def prediction_log_writer() -> PredictionLogWriter:
    """The writer of the configured database."""
    return _writer_for(connection.vendor)
