"""Input signatures: what columns a model version takes, and checking requests against them.

A signature is ``{"columns": [{"name", "dtype", "nullable", "pii"}, ...]}`` in
the order the model was fitted on. ``dtype`` is one of ``double``, ``long``,
``boolean`` or ``string``. A column is nullable only when the model was shown
missing values there (its input example or training data had some), so a null
elsewhere is refused instead of being silently routed down some default branch.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.exceptions import ValidationError

if TYPE_CHECKING:  # pandas loads on the first request that needs it, not at web start
    import pandas as pd

DTYPES = ("double", "long", "boolean", "string")
MAX_EXAMPLE_ROWS = 1000
MAX_COLUMNS = 2000

_NUMPY = {"double": np.float64, "long": np.int64, "boolean": np.bool_, "string": object}


def dtype_normalise(name: Any) -> str:
    """Steward's dtype for a pandas/numpy dtype name (or one of Steward's own)."""
    text = str(name).lower()
    if text in DTYPES:
        return text
    if text.startswith(("float", "double")):
        return "double"
    if text.startswith(("int", "uint", "long")):
        return "long"
    if text in ("bool", "boolean"):
        return "boolean"
    if text in ("object", "str", "string", "category") or text.startswith("string"):
        return "string"
    raise ValueError(f"unsupported column type '{name}'")


def signature_from_frame(frame: pd.DataFrame, *, pii: set[str] | frozenset = frozenset()) -> dict:
    columns = []
    for name in frame.columns:
        try:
            dtype = dtype_normalise(frame[name].dtype)
        except ValueError as exc:
            raise ValidationError({"signature": f"Column '{name}': {exc}."}) from None
        columns.append(
            {
                "name": str(name),
                "dtype": dtype,
                "nullable": bool(frame[name].isna().any()),
                "pii": str(name) in pii,
            }
        )
    return {"columns": columns}


def example_parse(data: Any, field: str = "input_example") -> dict:
    """Check an input example ``{"columns": [...], "dtypes": [...], "data": [[...], ...]}``."""
    if not isinstance(data, dict):
        raise ValidationError({field: "Must be an object with columns, dtypes and data."})
    columns, dtypes, rows = data.get("columns"), data.get("dtypes"), data.get("data")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise ValidationError({f"{field}.columns": "Must be a non-empty list of column names."})
    if len(columns) > MAX_COLUMNS or len(set(columns)) != len(columns):
        raise ValidationError({f"{field}.columns": f"At most {MAX_COLUMNS} distinct names."})
    if not isinstance(dtypes, list) or len(dtypes) != len(columns):
        raise ValidationError({f"{field}.dtypes": "Must give one dtype per column."})
    try:
        dtypes = [dtype_normalise(d) for d in dtypes]
    except ValueError as exc:
        raise ValidationError({f"{field}.dtypes": str(exc)}) from None
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        raise ValidationError({f"{field}.data": "Must be a list of rows, one value per column."})
    return {"columns": columns, "dtypes": dtypes, "data": rows[:MAX_EXAMPLE_ROWS]}


def example_frame(example: dict, columns: list[dict] | None = None) -> pd.DataFrame:
    """Example rows as the model receives them: checked and cast like a prediction request.

    ``columns`` is the version's signature; without it, the example's own dtypes.
    """
    if columns is None:
        columns = [
            {"name": n, "dtype": d, "nullable": True, "pii": False}
            for n, d in zip(example["columns"], example["dtypes"], strict=True)
        ]
    index = {name: i for i, name in enumerate(example["columns"])}
    missing = [c["name"] for c in columns if c["name"] not in index]
    if missing:
        raise ValidationError({"input_example": f"Missing columns: {', '.join(missing[:10])}."})
    values = {c["name"]: [row[index[c["name"]]] for row in example["data"]] for c in columns}
    return columns_check(values, columns, len(example["data"]), field_prefix="input_example.").frame()


def example_from_frame(frame: pd.DataFrame, rows: int = MAX_EXAMPLE_ROWS) -> dict:
    """JSON-safe example rows (missing values as null, dates as ISO text) from a DataFrame."""
    import pandas as pd  # loaded once per call, not per value (web start does not import it)

    def json_value(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if value is pd.NaT or (hasattr(value, "isoformat") and not isinstance(value, (int, float, str))):
            try:
                return None if pd.isna(value) else value.isoformat()
            except (TypeError, ValueError):
                return str(value)
        if isinstance(value, np.generic):
            return value.item()
        return value

    head = frame.head(rows)
    data = []
    for row in head.astype(object).itertuples(index=False):
        data.append([json_value(v) for v in row])
    return {"columns": [str(c) for c in head.columns], "dtypes": [str(t) for t in head.dtypes], "data": data}


def example_coerce(example: dict, columns: list[dict]) -> dict:
    """Integral floats back to ints in integer columns (pandas turns an int column with gaps into floats)."""
    longs = {i for i, name in enumerate(example["columns"])
             for c in columns if c["name"] == name and c["dtype"] == "long"}
    for row in example["data"]:
        for i in longs:
            value = row[i]
            if type(value) is float and value.is_integer():
                row[i] = int(value)
    return example


def signature_from_training(spec: Any, dataset_columns: list[dict] | None) -> dict:
    """The signature Steward's training job records (model/signature.json), with nullability and
    PII flags from the training dataset version.

    The training pipeline treats every column that is not int64/float64 as categorical text, so
    such a column is accepted in its own type and handed to the model as text.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("inputs"), list) or not spec["inputs"]:
        raise ValidationError({"signature": "signature.json must list its inputs."})
    known = {c.get("name"): c for c in dataset_columns or []}
    columns = []
    for item in spec["inputs"][:MAX_COLUMNS]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValidationError({"signature": "Each input is {name, dtype}."})
        raw = str(item.get("dtype", "string"))
        dtype = {"int64": "long", "float64": "double", "bool": "boolean"}.get(raw, "string")
        column = known.get(item["name"], {})
        entry = {"name": item["name"], "dtype": dtype,
                 "nullable": bool(column.get("nullable", column.get("null_count", 0))),
                 "pii": bool(column.get("pii", False))}
        if dtype not in ("long", "double"):
            entry["cast"] = "string"
        columns.append(entry)
    return {"columns": columns}


@dataclass
class ParsedInput:
    """A request's rows checked against a signature, as one typed array per column."""

    columns: list[dict]
    arrays: dict[str, np.ndarray]
    raw: dict[str, list]
    n_rows: int
    # Set when every column is a number: the rows as one float64 matrix (``raw`` is then empty).
    matrix: np.ndarray | None = None

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({c["name"]: self.arrays[c["name"]] for c in self.columns})


def _bad(column: str, message: str) -> ValidationError:
    return ValidationError({column: message})


def model_dtype(column: dict) -> str:
    """The dtype the model itself takes for a column (a cast column reaches it as text)."""
    return "string" if column.get("cast") == "string" else column["dtype"]


def _as_text(values: list) -> np.ndarray:
    # As Steward's training pipeline saw categorical values: str(), and a missing
    # value as pandas reads it from a file (NaN, which imputers look for; None is not).
    array = np.empty(len(values), dtype=object)
    array[:] = [math.nan if v is None or (type(v) is float and math.isnan(v)) else str(v) for v in values]
    return array


def _column_array(name: str, dtype: str, nullable: bool, values: list) -> np.ndarray:
    # Type checks run over the Python values before numpy sees them: numpy
    # would silently turn "1.5" into 1.5 and True into 1.0.
    if dtype == "double":
        kinds = {type(v) for v in values}
        if not kinds <= {int, float, type(None)}:
            i = next(i for i, v in enumerate(values) if type(v) not in (int, float, type(None)))
            raise _bad(name, f"Row {i}: expected a number, got {_show(values[i])}.")
        if type(None) in kinds:
            values = [math.nan if v is None else v for v in values]
        try:
            array = np.asarray(values, dtype=np.float64)
        except OverflowError:
            raise _bad(name, "A number is out of range.") from None
        if not nullable:
            missing = np.isnan(array)
            if missing.any():
                i = int(np.argmax(missing))
                raise _bad(name, f"Row {i}: this model cannot take a missing value (null or NaN) here.")
        return array
    if dtype == "long":
        missing = False
        for i, v in enumerate(values):
            if type(v) is not int:
                if v is None or (type(v) is float and math.isnan(v)):
                    if nullable:
                        missing = True
                        continue
                    raise _bad(name, f"Row {i}: this model cannot take a missing value (null or NaN) here.")
                raise _bad(name, f"Row {i}: expected an integer, got {_show(v)}.")
        if missing:
            return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:
            raise _bad(name, "An integer is out of the 64-bit range.") from None
    if dtype == "boolean":
        for i, v in enumerate(values):
            if type(v) is not bool:
                if v is None and nullable:
                    continue
                if v is None:
                    raise _bad(name, f"Row {i}: this model cannot take a missing value (null) here.")
                raise _bad(name, f"Row {i}: expected true or false, got {_show(v)}.")
        return np.asarray(values, dtype=np.bool_) if None not in values else _as_text(values)
    # string
    for i, v in enumerate(values):
        if type(v) is str and "\x00" in v:
            raise _bad(name, f"Row {i}: text must not contain NUL characters.")
        if type(v) is not str:
            if v is None and nullable:
                continue
            if v is None:
                raise _bad(name, f"Row {i}: this model cannot take a missing value (null) here.")
            raise _bad(name, f"Row {i}: expected a string, got {_show(v)}.")
    array = np.empty(len(values), dtype=object)
    array[:] = [math.nan if v is None else v for v in values]
    return array


def _show(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def columns_check(
    values: dict[str, list], columns: list[dict], n_rows: int, field_prefix: str = ""
) -> ParsedInput:
    arrays = {}
    raw = {}
    errors: dict[str, list[str]] = {}  # every bad column at once, not just the first
    for column in columns:
        name = column["name"]
        if name not in values:
            errors[field_prefix + name] = ["Missing column."]
            continue
        column_values = values[name]
        try:
            array = _column_array(
                field_prefix + name, column["dtype"], column.get("nullable", False), column_values
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
            continue
        if column.get("cast") == "string":
            array = _as_text(column_values)
        arrays[name] = array
        raw[name] = column_values
    if errors:
        raise ValidationError(errors)
    return ParsedInput(columns=columns, arrays=arrays, raw=raw, n_rows=n_rows)


_NUMBER_TYPES = frozenset((int, float))


@dataclass(frozen=True)
class NumberColumns:
    """An all-number signature, worked out once per loaded model for the one-pass parse."""

    names: list[str]
    pick: Callable[[Any], Any]  # a record -> its values, in signature order
    strict: list[int]  # the columns that refuse a missing value


def number_columns(columns: list[dict]) -> NumberColumns | None:
    if not columns or any(c["dtype"] != "double" or c.get("cast") for c in columns):
        return None
    names = [c["name"] for c in columns]
    strict = [j for j, c in enumerate(columns) if not c.get("nullable")]
    return NumberColumns(names=names, pick=operator.itemgetter(*names), strict=strict)


def _numeric_records(records: list, columns: list[dict], numbers: NumberColumns) -> ParsedInput | None:
    """All-number signatures: one pass into a matrix, or None to let the column-by-column path
    find and name whatever is wrong."""
    try:
        rows = list(map(numbers.pick, records))
    except (KeyError, TypeError):
        return None
    width = len(numbers.names)
    if not set(map(type, rows if width == 1 else chain.from_iterable(rows))) <= _NUMBER_TYPES:
        return None
    try:
        matrix = np.array(rows, dtype=np.float64).reshape(len(records), width)
    except OverflowError:
        return None
    strict = numbers.strict
    if strict and np.isnan(matrix if len(strict) == width else matrix[:, strict]).any():
        return None
    arrays = {name: matrix[:, j] for j, name in enumerate(numbers.names)}
    return ParsedInput(columns=columns, arrays=arrays, raw={}, n_rows=len(records), matrix=matrix)


def request_parse(body: Any, columns: list[dict], *, max_rows: int,
                  numbers: NumberColumns | None = None) -> ParsedInput:
    """``{"records": [{col: value}, ...]}`` or ``{"columns": {col: [values]}}``, checked.

    Raises ValidationError naming the column (or the body field) at fault, and
    ``TooManyRows`` when the request holds more rows than ``max_rows``.
    ``numbers`` (``number_columns(columns)``) lets all-number records take the one-pass parse.
    """
    if not isinstance(body, dict):
        raise ValidationError({"body": 'Send {"records": [{...}, ...]} or {"columns": {name: [...]}}.'})
    if "records" in body:
        records = body["records"]
        if not isinstance(records, list) or not records:
            raise ValidationError({"records": "Must be a non-empty list of objects."})
        if len(records) > max_rows:
            raise TooManyRows(len(records), max_rows)
        fast = _numeric_records(records, columns, numbers) if numbers is not None else None
        if fast is not None:
            return fast
        values: dict[str, list] = {}
        missing: dict[str, str] = {}
        for column in columns:
            name = column["name"]
            try:
                values[name] = [r[name] for r in records]
            except KeyError:
                i = next(i for i, r in enumerate(records) if name not in r)
                missing[name] = f"Row {i}: missing column."
            except TypeError:
                i = next(i for i, r in enumerate(records) if not isinstance(r, dict))
                raise ValidationError({f"records[{i}]": "Each record must be an object."}) from None
        if not columns:
            bad = next((i for i, r in enumerate(records) if not isinstance(r, dict)), None)
            if bad is not None:
                raise ValidationError({f"records[{bad}]": "Each record must be an object."})
        if missing:
            try:
                columns_check(values, [c for c in columns if c["name"] not in missing], len(records))
            except ValidationError as exc:
                raise ValidationError({**missing, **exc.message_dict}) from None
            raise ValidationError(missing)
        return columns_check(values, columns, len(records))
    if "columns" in body:
        data = body["columns"]
        if not isinstance(data, dict) or not data:
            raise ValidationError({"columns": "Must be an object of column name -> list of values."})
        lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
        if -1 in lengths:
            name = next(k for k, v in data.items() if not isinstance(v, list))
            raise _bad(name, "Must be a list of values.")
        if len(lengths) != 1 or 0 in lengths:
            raise ValidationError({"columns": "Every column must hold the same, non-zero number of values."})
        n_rows = lengths.pop()
        if n_rows > max_rows:
            raise TooManyRows(n_rows, max_rows)
        return columns_check(data, columns, n_rows)
    raise ValidationError({"records": 'Send {"records": [...]} or {"columns": {...}}.'})


class TooManyRows(Exception):
    def __init__(self, got: int, limit: int):
        super().__init__(f"The request holds {got} rows; this server scores at most {limit} per request.")
