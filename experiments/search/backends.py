"""What run search does differently per database, behind one interface.

The compiler and the entry point ask a ``SearchBackend`` for the two things
that differ: how a LIKE/ILIKE pattern becomes SQL, and how a page's params,
latest metrics and tags are read. ``search_backend()`` picks the implementation
from the connection's vendor; every other line of search is the same SQL on both.
"""

from __future__ import annotations

import math

import orjson
from django.core.exceptions import ImproperlyConfigured
from django.db import connection as default_connection
from django.db.models import F, Lookup
from django.db.models.expressions import RawSQL

from experiments.models import LatestMetric, Param, Run, Tag
from experiments.selectors import RunDetails, details_by_run

DETAIL_COLUMNS = ("details_params", "details_metrics", "details_tags")


class _Pattern(Lookup):
    """``lhs <operator> rhs``, with '\\' as the escape character unless the operator has none."""

    prepare_rhs = False
    operator = "LIKE"
    escape = True

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        escape = " ESCAPE '\\'" if self.escape else ""
        return f"{lhs} {self.operator} {rhs}{escape}", [*lhs_params, *rhs_params]


class Like(_Pattern):
    """SQL LIKE: case-sensitive on PostgreSQL, case-insensitive for ASCII letters on SQLite."""

    lookup_name = "steward_like"


class ILike(_Pattern):
    """PostgreSQL's case-insensitive LIKE."""

    lookup_name = "steward_ilike"
    operator = "ILIKE"


class Glob(_Pattern):
    """SQLite's GLOB: case-sensitive, with * ? and [...] and no escape character."""

    lookup_name = "steward_glob"
    operator = "GLOB"
    escape = False


def like_to_glob(pattern: str) -> str:
    """SQL LIKE (escape '\\') to SQLite GLOB, which unlike SQLite's LIKE is case-sensitive."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            c = pattern[i + 1]
            out.append(f"[{c}]" if c in "*?[" else c)
            i += 2
            continue
        out.append("*" if c == "%" else "?" if c == "_" else f"[{c}]" if c in "*?[" else c)
        i += 1
    return "".join(out)


class SearchBackend:
    """The database-specific half of run search."""

    vendor: str
    # Columns ``with_details`` adds to a page's rows, which ``details_attach`` consumes.
    detail_columns: tuple[str, ...] = ()

    def like(self, field: str, pattern: str) -> Lookup:
        """Case-sensitive match of ``field`` against a LIKE pattern escaped with '\\'."""
        raise NotImplementedError

    def ilike(self, field: str, pattern: str) -> Lookup:
        """Case-insensitive match of ``field`` against a LIKE pattern escaped with '\\'."""
        raise NotImplementedError

    def with_details(self, runs):
        """The queryset of a page, with whatever ``details_attach`` needs read alongside."""
        return runs

    def details_attach(self, rows: list[dict]) -> None:
        """Give each row ``details``: its run's params, latest metrics and tags."""
        raise NotImplementedError


class PostgreSQLBackend(SearchBackend):
    vendor = "postgresql"
    detail_columns = DETAIL_COLUMNS

    def like(self, field: str, pattern: str) -> Lookup:
        return Like(F(field), pattern)

    def ilike(self, field: str, pattern: str) -> Lookup:
        return ILike(F(field), pattern)

    def with_details(self, runs):
        """Each run's params, latest metrics and tags as JSON objects, read with the page itself.

        PostgreSQL computes these per-run subqueries after the sort and limit, so a
        page costs one round trip and one index probe per run and table.
        """
        quote = default_connection.ops.quote_name
        run_id = f"{quote(Run._meta.db_table)}.{quote('id')}"

        def per_run(model, value_sql: str) -> RawSQL:
            table = quote(model._meta.db_table)
            # Only table and column names from the models go into this SQL, no user input.
            return RawSQL(  # noqa: S611
                f"SELECT json_object_agg(d.{quote('key')}, {value_sql})::text FROM {table} d "
                f"WHERE d.{quote('run_id')} = {run_id}",
                (),
            )

        params, metrics, tags = DETAIL_COLUMNS
        return runs.annotate(**{
            params: per_run(Param, "d.value"),
            metrics: per_run(LatestMetric, "json_build_array(d.value, d.step, d.timestamp)"),
            tags: per_run(Tag, "d.value"),
        })

    def details_attach(self, rows: list[dict]) -> None:
        for row in rows:
            row["details"] = _details_from_json(*(row.pop(name) for name in DETAIL_COLUMNS))


class SQLiteBackend(SearchBackend):
    vendor = "sqlite"

    def like(self, field: str, pattern: str) -> Lookup:
        # SQLite's LIKE ignores the case of ASCII letters; GLOB does not.
        return Glob(F(field), like_to_glob(pattern))

    def ilike(self, field: str, pattern: str) -> Lookup:
        return Like(F(field), pattern)

    def details_attach(self, rows: list[dict]) -> None:
        # Three flat queries keyed by run id (no Run object: building 100 costs more than the reads).
        details = details_by_run([row["id"] for row in rows])
        for row in rows:
            row["details"] = details[row["id"]]


_BACKENDS = {backend.vendor: backend for backend in (PostgreSQLBackend(), SQLiteBackend())}


def search_backend(connection=default_connection) -> SearchBackend:
    """The search backend for the connection's database."""
    try:
        return _BACKENDS[connection.vendor]
    except KeyError:
        raise ImproperlyConfigured(
            f"Run search supports PostgreSQL and SQLite, not {connection.vendor}."
        ) from None


_NON_FINITE = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": None}


def _details_from_json(params: str | None, metrics_json: str | None, tags: str | None) -> RunDetails:
    loads = orjson.loads
    metrics = {}
    if metrics_json:
        for key, (value, step, ts) in loads(metrics_json).items():
            # PostgreSQL writes a non-finite float8 as a JSON string; NaN is stored as NULL.
            metrics[key] = (_NON_FINITE[value] if isinstance(value, str) else value, step, ts)
    return RunDetails(loads(params) if params else {}, metrics, loads(tags) if tags else {})
