"""Reading dataset files (CSV, Parquet) without holding them whole in memory.

``inspect_file`` makes one streaming pass to find the schema, row count and
null counts, and turns every way a file can be wrong into a ValidationError
that names the problem. ``read_frame`` loads a stored version for the
workers (profile, validation, training) with the types found at upload.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

# pandas and pyarrow are imported in the functions that use them, so that starting the web
# server does not load them (tests/test_lean_start.py).
if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_MAGIC = b"PAR1"
SNIFF_BYTES = 64 * 1024
READ_CHUNK = 1024 * 1024
# Small blocks for the streaming pass in the web process: its peak memory grows
# with the block size, not the file (Arrow reads about 32 blocks ahead: some 100 MB
# at 1 MB blocks, 50 MB at 256 kB). Wide rows get bigger blocks (_block_size_for).
INSPECT_BLOCK_SIZE = 256 * 1024
LOAD_BLOCK_SIZE = 16 * 1024 * 1024
DELIMITERS = [",", ";", "\t", "|"]
ENCODING_NAME_MAX = 40
# Codecs that Python counts as text but that are not how a file stores its
# characters: domain-name and escape transforms, and the codec that refuses everything.
NOT_FILE_ENCODINGS = {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
MAX_COLUMNS = 10_000
MAX_COLUMN_NAME = 500
NUMERIC_DTYPES = {"int64", "float64"}

Source = str | IO[bytes]


@dataclass
class FileSummary:
    format: str
    read_options: dict[str, str]
    row_count: int
    columns: list[dict[str, Any]] = field(default_factory=list)


def dtype_name(t: pa.DataType) -> str:
    import pyarrow as pa
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int64"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float64"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_dictionary(t):
        return dtype_name(t.value_type)
    if pa.types.is_null(t):
        return "empty"
    raise ValidationError(
        {"file": f"Column type {t} is not supported; use flat number, text, boolean or date columns."}
    )


ARROW_TYPE_NAMES = {"int64": "int64", "float64": "float64", "bool": "bool_", "string": "string"}


def _rewind(source: Source) -> Source:
    if not isinstance(source, str):
        source.seek(0)
    return source


def _read_head(source: Source, n: int) -> bytes:
    if isinstance(source, str):
        with open(source, "rb") as fh:
            return fh.read(n)
    source.seek(0)
    return source.read(n)


def _iter_chunks(source: Source):
    if isinstance(source, str):
        with open(source, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                yield chunk
    else:
        source.seek(0)
        while chunk := source.read(READ_CHUNK):
            yield chunk


def _is_parquet(source: Source, size: int) -> bool:
    if size < 12 or _read_head(source, 4) != PARQUET_MAGIC:
        return False
    if isinstance(source, str):
        with open(source, "rb") as fh:
            fh.seek(-4, 2)
            return fh.read(4) == PARQUET_MAGIC
    source.seek(-4, 2)
    return source.read(4) == PARQUET_MAGIC


def detect_format(source: Source, *, size: int, declared: str | None, filename: str = "") -> str:
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    parquet = _is_parquet(source, size)
    fmt = declared or ("parquet" if parquet or filename.lower().endswith(".parquet") else "csv")
    if fmt not in ("csv", "parquet"):
        raise ValidationError({"format": "Must be 'csv' or 'parquet'."})
    if fmt == "parquet" and not parquet:
        raise ValidationError({"file": "The file is not a Parquet file (no PAR1 header and footer)."})
    if fmt == "csv" and parquet:
        raise ValidationError({"format": "The file is a Parquet file, not a CSV."})
    return fmt


def encoding_clean(encoding: str | None) -> str:
    """The canonical name of a character encoding (utf-8 when None), or a ValidationError on "encoding".

    ``codecs.lookup`` also finds transforms: bytes to bytes (zlib, bz2, base64,
    hex, uu, quopri), str to str (rot13) and domain names (idna, punycode).
    Reading a "CSV" through zlib inflates it inside the request; the others
    fail deep in the reader. Only codecs that decode stored text are accepted.
    """
    if encoding is None:
        return "utf-8"
    message = "Give a character encoding such as utf-8, latin-1 or cp1252."
    if not isinstance(encoding, str) or not encoding or len(encoding) > ENCODING_NAME_MAX:
        raise ValidationError({"encoding": message})
    try:
        info = codecs.lookup(encoding)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise ValidationError({"encoding": f"Unknown encoding {encoding!r}. {message}"}) from None
    if not info._is_text_encoding or info.name in NOT_FILE_ENCODINGS:
        raise ValidationError({"encoding": f"{encoding!r} is not a character encoding. {message}"})
    return info.name


def delimiter_clean(delimiter: str | None) -> str | None:
    """None (sniff it) or one ASCII character the CSV reader can split on; else a ValidationError."""
    if delimiter is None:
        return None
    if (isinstance(delimiter, str) and len(delimiter) == 1 and delimiter != '"'
            and (delimiter == "\t" or " " <= delimiter <= "~")):
        return delimiter
    shown = f"{delimiter[:10]!r} is not usable: " if isinstance(delimiter, str) and delimiter else ""
    raise ValidationError({"delimiter": f"{shown}give one ASCII character other than a quote or a line "
                                        "break, e.g. ',', ';', '\\t' or '|'."})


def _check_text(source: Source, encoding: str) -> None:
    """Reject binary content and bytes that are not in the given encoding."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    for chunk in _iter_chunks(source):
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise ValidationError(
                {"file": f"The file has binary content (a NUL byte at offset {offset + nul}); "
                         "it is not a CSV or Parquet file."}
            )
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            hint = " Give its encoding, e.g. encoding=latin-1." if encoding == "utf-8" else ""
            raise ValidationError(
                {"encoding": f"The file is not valid {encoding}: byte 0x{exc.object[exc.start]:02x} "
                             f"at offset {offset + exc.start}.{hint}"}
            ) from None
        offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValidationError(
            {"encoding": f"The file ends in the middle of a {encoding} character."}
        ) from None


def _header_lines(source: Source, encoding: str) -> list[str]:
    head = _read_head(source, SNIFF_BYTES).decode(encoding, errors="replace").lstrip("\ufeff")
    lines = head.splitlines()
    if len(head) >= SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut off
    return [line for line in lines[:20] if line.strip()]


def sniff_delimiter(lines: list[str]) -> str | None:
    """The delimiter the standard library's csv.Sniffer finds among DELIMITERS, or None.

    The Sniffer reads quoting, so a quoted field holding another candidate ("a;b" in a comma
    file) does not mislead it.
    """
    if not lines:
        return None
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return None


def _check_delimiter(lines: list[str], delimiter: str, explicit: bool) -> str:
    if not lines:
        raise ValidationError({"file": "The file has no header line."})
    if lines[0].count(delimiter) == 0:
        sniffed = sniff_delimiter(lines)
        if sniffed and sniffed != delimiter:
            if explicit:
                raise ValidationError(
                    {"delimiter": f"The header has no {delimiter!r}; the file looks delimited by "
                                  f"{sniffed!r}. Upload it with delimiter={sniffed!r}."}
                )
            return sniffed
    return delimiter


def _block_size_for(lines: list[str]) -> int:
    """A streaming block: small, yet holding many whole rows (a row must not outgrow its block)."""
    longest = 4 * max((len(line) for line in lines), default=0)  # up to 4 bytes a character
    return min(LOAD_BLOCK_SIZE, max(INSPECT_BLOCK_SIZE, 64 * longest))


def _csv_options(read_options: dict[str, str], column_types: dict[str, pa.DataType] | None = None,
                 include: list[str] | None = None, block_size: int = INSPECT_BLOCK_SIZE):
    # One thread for the streaming pass: extra reader threads add memory, not much speed, on a web worker.
    import pyarrow.csv as pacsv
    ropts = pacsv.ReadOptions(block_size=block_size, encoding=read_options.get("encoding", "utf-8"),
                              use_threads=block_size >= LOAD_BLOCK_SIZE)
    popts = pacsv.ParseOptions(delimiter=read_options.get("delimiter", ","))
    copts = pacsv.ConvertOptions(
        strings_can_be_null=True,
        column_types=column_types or {},
        include_columns=include or [],
    )
    return ropts, popts, copts


_CONVERSION_RE = re.compile(r"In CSV column #(\d+): .*?CSV conversion error to (\w+): invalid value '(.*)'",
                            re.S)


def _friendly_arrow_error(exc: Exception) -> ValidationError:
    text = str(exc)
    if "Expected" in text and "columns" in text:
        return ValidationError(
            {"file": f"Rows have different numbers of columns ({text.strip()[:300]}). "
                     "Check the delimiter and quoting."}
        )
    return ValidationError({"file": f"The file could not be read as CSV: {text.strip()[:300]}"})


def _widen(value: str) -> pa.DataType:
    import pyarrow as pa
    try:
        float(value)
    except ValueError:
        return pa.string()
    return pa.float64()


class _Tally:
    """Per column: null count and up to two distinct values (enough to spot a constant column)."""

    def __init__(self, names: list[str]):
        self.names = names
        self.nulls = [0] * len(names)
        self.distinct: list[set] = [set() for _ in names]
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        import pyarrow.compute as pc

        self.rows += batch.num_rows
        for i in range(batch.num_columns):
            col = batch.column(i)
            self.nulls[i] += col.null_count
            if len(self.distinct[i]) < 2 and col.null_count < len(col):
                for value in pc.unique(col.drop_null())[:2].to_pylist():
                    self.distinct[i].add(value)


def _columns_from(schema: pa.Schema, tally: _Tally) -> list[dict[str, Any]]:
    cols = []
    for i, f in enumerate(schema):
        cols.append({
            "name": f.name,
            "dtype": dtype_name(f.type),
            "nullable": tally.nulls[i] > 0,
            "null_count": tally.nulls[i],
            "single_value": len(tally.distinct[i]) < 2,
        })
    return cols


def _check_names(names: list[str]) -> None:
    if len(names) > MAX_COLUMNS:
        raise ValidationError({"file": f"The file has {len(names)} columns; at most {MAX_COLUMNS}."})
    seen = set()
    for i, name in enumerate(names):
        if not name.strip():
            raise ValidationError({"file": f"Column {i + 1} has an empty name."})
        if len(name) > MAX_COLUMN_NAME:
            raise ValidationError({"file": f"Column {i + 1}'s name is over {MAX_COLUMN_NAME} characters."})
        if name in seen:
            raise ValidationError({"file": f"Column names must be unique: {name!r} appears twice."})
        seen.add(name)


def _inspect_csv(source: Source, *, delimiter: str | None, encoding: str | None) -> FileSummary:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    encoding = encoding_clean(encoding)
    delimiter = delimiter_clean(delimiter)
    _check_text(source, encoding)
    lines = _header_lines(source, encoding)
    if delimiter is None:
        # No delimiter given: the Sniffer's answer, which reads quoting ("a,b" inside a field of
        # a semicolon file), else a comma.
        delim = _check_delimiter(lines, sniff_delimiter(lines) or ",", explicit=False)
    else:
        delim = _check_delimiter(lines, delimiter, explicit=True)
    read_options = {"delimiter": delim, "encoding": encoding}

    overrides: dict[str, pa.DataType] = {}
    block = _block_size_for(lines)
    for _attempt in range(MAX_COLUMNS):
        try:
            reader = pacsv.open_csv(_rewind(source), *_csv_options(read_options, overrides, block_size=block))
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                raise ValidationError({"file": "The file is empty."}) from None
            raise _friendly_arrow_error(exc) from None
        names = reader.schema.names
        _check_names(names)
        tally = _Tally(names)
        try:
            for batch in reader:
                tally.add(batch)
        except pa.ArrowInvalid as exc:
            # Types are guessed from the first block; a later value that does not
            # fit (an int column with a '3.5' or an 'n/a') widens that column.
            m = _CONVERSION_RE.search(str(exc))
            if not m:
                raise _friendly_arrow_error(exc) from None
            name = names[int(m.group(1))]
            wider = _widen(m.group(3)) if m.group(2) in ("int64", "double") else pa.string()
            if overrides.get(name) == wider:
                wider = pa.string()
            if overrides.get(name) == wider:
                raise _friendly_arrow_error(exc) from None
            overrides[name] = wider
            continue
        schema = reader.schema
        break
    else:  # pragma: no cover - bounded by the column count
        raise ValidationError({"file": "The column types could not be settled."})
    if tally.rows == 0:
        raise ValidationError({"file": "The file has a header but no data rows."})
    if len(names) == 1 and delimiter is None and len(lines) > 1:
        # One column is legal, but a single column named "a;b;c" is a wrong delimiter.
        sniffed = sniff_delimiter(lines)
        if sniffed and sniffed != delim:
            raise ValidationError(
                {"delimiter": f"The file looks delimited by {sniffed!r}. "
                              f"Upload it with delimiter={sniffed!r}."}
            )
    return FileSummary("csv", read_options, tally.rows, _columns_from(schema, tally))


def _inspect_parquet(source: Source) -> FileSummary:
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(_rewind(source))
        schema = pf.schema_arrow
        names = schema.names
        _check_names(names)
        for f in schema:
            dtype_name(f.type)
        tally = _Tally(names)
        for batch in pf.iter_batches(batch_size=64 * 1024):
            tally.add(batch)
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError({"file": f"The Parquet file could not be read: {str(exc)[:300]}"}) from None
    if tally.rows == 0:
        raise ValidationError({"file": "The file has no data rows."})
    return FileSummary("parquet", {}, tally.rows, _columns_from(schema, tally))


def inspect_file(source: Source, *, size: int, fmt: str | None = None, filename: str = "",
                 delimiter: str | None = None, encoding: str | None = None) -> FileSummary:
    fmt = detect_format(source, size=size, declared=fmt, filename=filename)
    if fmt == "parquet":
        return _inspect_parquet(source)
    return _inspect_csv(source, delimiter=delimiter, encoding=encoding)


def _column_types(columns: list[dict[str, Any]]) -> dict[str, pa.DataType]:
    import pyarrow as pa

    return {c["name"]: getattr(pa, ARROW_TYPE_NAMES[c["dtype"]])() for c in columns
            if c["dtype"] in ARROW_TYPE_NAMES}


def read_table(source: Source, *, fmt: str, read_options: dict[str, str], columns: list[dict[str, Any]],
               include: list[str] | None = None) -> pa.Table:
    """The whole file (or some of its columns) with the types recorded at upload."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    if fmt == "parquet":
        return pq.read_table(_rewind(source), columns=include)
    wanted = [c for c in columns if include is None or c["name"] in include]
    return pacsv.read_csv(_rewind(source), *_csv_options(read_options, _column_types(wanted), include,
                                                         block_size=LOAD_BLOCK_SIZE))


def to_pandas(table: pa.Table):
    """A DataFrame with text as object columns (NaN for missing), which scikit-learn takes as is."""
    import numpy as np
    import pandas as pd

    df = table.to_pandas()
    for name in df.columns:
        if isinstance(df[name].dtype, pd.StringDtype) or df[name].dtype == object:
            col = df[name].astype(object)
            df[name] = col.where(col.notna(), np.nan)
    return df


def read_head(source: Source, *, fmt: str, read_options: dict[str, str], columns: list[dict[str, Any]],
              rows: int) -> list[list[Any]]:
    """The first rows, read block by block so a large file is not loaded."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    if fmt == "parquet":
        pf = pq.ParquetFile(_rewind(source))
        batch = next(pf.iter_batches(batch_size=rows), None)
    else:
        block = _block_size_for(_header_lines(source, read_options.get("encoding", "utf-8")))
        ropts, popts, copts = _csv_options(read_options, _column_types(columns), block_size=block)
        reader = pacsv.open_csv(_rewind(source), ropts, popts, copts)
        batch = next(iter(reader), None)
    if batch is None:
        return []
    table = pa.Table.from_batches([batch]).slice(0, rows)
    return [list(r.values()) for r in table.to_pylist()]
