"""Column statistics and validation rules, computed on a DataFrame in the worker.

Numbers are sorted once per column; min, max, quantiles and the number of
distinct values all come from that one sort. Everything returned is plain
JSON (NaN and infinities become None).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    import pandas as pd

QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
HISTOGRAM_BINS = 20
TOP_VALUES = 10
FEW_VALUES = 20
MAX_GROUPS = 50
MAX_FAILED_ROWS = 50


def _num(value: Any) -> float | int | None:
    if value is None:
        return None
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _counts(series: pd.Series, limit: int) -> tuple[int, list[list[Any]]]:
    vc = series.value_counts(dropna=True, sort=True)
    return len(vc), [[_label(k), int(c)] for k, c in vc.head(limit).items()]


def _numeric(series: pd.Series) -> dict[str, Any]:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    values = np.sort(values[~np.isnan(values)])
    if values.size == 0:
        return {"kind": "numeric", "distinct": 0}
    finite = values[np.isfinite(values)]
    distinct = int(np.count_nonzero(np.diff(values)) + 1)
    out: dict[str, Any] = {
        "kind": "numeric",
        "distinct": distinct,
        "min": _num(values[0]),
        "max": _num(values[-1]),
        "mean": _num(finite.mean()) if finite.size else None,
        "std": _num(finite.std(ddof=1)) if finite.size > 1 else None,
        "quantiles": {str(q): _num(v)
                      for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)},
    }
    if finite.size:
        counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
        out["histogram"] = {"counts": counts.tolist(), "edges": [_num(e) for e in edges]}
    if distinct <= FEW_VALUES:
        uniq, counts = np.unique(values, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        out["top_values"] = [[_label(uniq[i].item()), int(counts[i])] for i in order[:TOP_VALUES]]
    return out


def _categorical(series: pd.Series) -> dict[str, Any]:
    distinct, top = _counts(series, TOP_VALUES)
    return {"kind": "categorical", "distinct": distinct, "top_values": top,
            "histogram": {"labels": [t[0] for t in top], "counts": [t[1] for t in top]}}


def _datetime(series: pd.Series) -> dict[str, Any]:
    import pandas as pd
    values = pd.to_datetime(series, errors="coerce").dropna()
    if values.empty:
        return {"kind": "datetime", "distinct": 0}
    ns = values.astype("int64").to_numpy()
    counts, edges = np.histogram(ns, bins=HISTOGRAM_BINS)
    return {
        "kind": "datetime",
        "distinct": int(values.nunique()),
        "min": values.min().isoformat(),
        "max": values.max().isoformat(),
        "histogram": {"counts": counts.tolist(),
                      "edges": [pd.Timestamp(int(e)).isoformat() for e in edges]},
    }


def profile_column(series: pd.Series, meta: dict[str, Any]) -> dict[str, Any]:
    nulls = int(series.isna().sum())
    total = len(series)
    entry = {"name": meta["name"], "dtype": meta["dtype"], "role": meta.get("role"),
             "pii": bool(meta.get("pii")), "count": total - nulls, "nulls": nulls,
             "null_fraction": (nulls / total) if total else 0.0}
    if meta["dtype"] in ("int64", "float64"):
        entry.update(_numeric(series))
    elif meta["dtype"] == "datetime":
        entry.update(_datetime(series))
    else:
        entry.update(_categorical(series))
    return entry


def _is_discrete(entry: dict[str, Any]) -> bool:
    return entry.get("kind") == "categorical" or entry.get("distinct", FEW_VALUES + 1) <= FEW_VALUES


def profile_frame(df: pd.DataFrame, columns: list[dict[str, Any]],
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    import pandas as pd
    out: list[dict[str, Any]] = []
    for i, meta in enumerate(columns, start=1):
        out.append(profile_column(df[meta["name"]], meta))
        if progress and (i % 5 == 0 or i == len(columns)):
            progress(i, len(columns))
    by_name = {c["name"]: c for c in out}

    target = next((c["name"] for c in columns if c.get("role") == "target"), None)
    labels = None
    if target is not None:
        entry = by_name[target]
        if _is_discrete(entry):
            _, top = _counts(df[target], MAX_GROUPS)
            labels = {"column": target, "kind": "classes", "counts": top}
        else:
            labels = {"column": target, "kind": "histogram", "histogram": entry.get("histogram")}

    groups = []
    for meta in columns:
        if meta.get("role") != "sensitive":
            continue
        col = df[meta["name"]]
        _, top = _counts(col, MAX_GROUPS)
        group: dict[str, Any] = {"column": meta["name"], "counts": top, "missing": int(col.isna().sum())}
        if labels is not None and labels["kind"] == "classes":
            table = pd.crosstab(col.map(_label), df[target].map(_label))
            group["by_label"] = {
                str(g): {str(k): int(v) for k, v in row.items()}
                for g, row in table.head(MAX_GROUPS).iterrows()
            }
        groups.append(group)
    return {"rows": len(df), "columns": out, "labels": labels, "sensitive_groups": groups}


# --- validation ----------------------------------------------------------------------------


def _failed(mask: np.ndarray) -> tuple[int, list[int]]:
    rows = np.flatnonzero(mask)
    # Rows are numbered from 1 after the header, as a person counts them in the file.
    return int(rows.size), [int(r) + 1 for r in rows[:MAX_FAILED_ROWS]]


def _check(rule, df: pd.DataFrame, meta: dict[str, Any] | None) -> dict[str, Any]:
    import pandas as pd
    col = df[rule.column]
    kind = rule.kind
    if kind == "not_null":
        count, rows = _failed(col.isna().to_numpy())
        return {"failed_count": count, "failed_rows": rows,
                "message": f"{count} null value(s) in {rule.column!r}" if count else "No nulls"}
    if kind == "unique":
        count, rows = _failed((col.duplicated(keep=False) & col.notna()).to_numpy())
        return {"failed_count": count, "failed_rows": rows,
                "message": f"{count} row(s) share a value in {rule.column!r}" if count else "All unique"}
    if kind == "range":
        if meta and meta["dtype"] not in ("int64", "float64"):
            return {"failed_count": len(df), "failed_rows": [],
                    "message": f"{rule.column!r} is {meta['dtype']}, not a number"}
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = np.zeros(len(values), dtype=bool)
        lo, hi = rule.config.get("min"), rule.config.get("max")
        with np.errstate(invalid="ignore"):
            if lo is not None:
                bad |= values < lo
            if hi is not None:
                bad |= values > hi
        count, rows = _failed(bad)
        return {"failed_count": count, "failed_rows": rows,
                "message": f"{count} value(s) outside [{lo}, {hi}]" if count else "All in range"}
    if kind == "allowed_values":
        allowed = {_label(v) for v in rule.config["values"]}
        bad = col.notna() & ~col.map(_label).isin(allowed)
        count, rows = _failed(bad.to_numpy())
        found = [] if meta and meta.get("pii") else sorted({_label(v) for v in col[bad].head(1000)})[:10]
        return {"failed_count": count, "failed_rows": rows,
                "message": allowed_values_message(count, found)}
    raise ValueError(kind)


def allowed_values_message(count: int, examples: list[str]) -> str:
    """The outcome of an allowed_values rule; a PII column's values are never quoted, only counted."""
    if not count:
        return "All values allowed"
    if not examples:
        return f"{count} value(s) not allowed"
    return f"{count} value(s) not allowed, e.g. {', '.join(examples)}"


def validate_frame(df: pd.DataFrame, columns: list[dict[str, Any]], rules, previous) -> dict[str, Any]:
    by_name = {c["name"]: c for c in columns}
    results = []
    for rule in rules:
        entry = {"id": rule.pk, "kind": rule.kind, "column": rule.column, "config": rule.config}
        if rule.kind == "schema_unchanged":
            if previous is None:
                entry.update(passed=True, failed_count=0, failed_rows=[], failed_columns=[],
                             message="First version: nothing to compare with")
            else:
                before = {c["name"]: c["dtype"] for c in previous.columns}
                now = {c["name"]: c["dtype"] for c in columns}
                added = [n for n in now if n not in before]
                removed = [n for n in before if n not in now]
                changed = [f"{n}: {before[n]} -> {now[n]}"
                           for n in now if n in before and before[n] != now[n]]
                problems = ([f"added {n}" for n in added] + [f"removed {n}" for n in removed]
                            + [f"type {c}" for c in changed])
                entry.update(passed=not problems, failed_count=0, failed_rows=[],
                             failed_columns=added + removed + [c.split(":")[0] for c in changed],
                             message="; ".join(problems) if problems else
                             f"Same columns and types as version {previous.version}")
        elif rule.column not in by_name:
            entry.update(passed=False, failed_count=len(df), failed_rows=[], failed_columns=[rule.column],
                         message=f"Column {rule.column!r} is missing")
        else:
            entry.update(_check(rule, df, by_name[rule.column]))
            entry["passed"] = entry["failed_count"] == 0
            entry["failed_columns"] = [] if entry["passed"] else [rule.column]
        results.append(entry)
    return {"passed": all(r["passed"] for r in results), "rules": results,
            "row_numbering": "Rows are numbered from 1, the first line after the header."}
