"""Reading the JSON that clients send: one parser for every API view and the predict endpoint.

orjson reads almost every body, several times faster than the standard
library on the thousands of points of a metric batch. What it refuses (a NaN
literal, a number past a double's range, a lone surrogate) goes to the
standard library, so what is accepted stays what Python's json module accepts.

Both stop at MAX_DEPTH levels of nesting: the standard library's scanner
recurses (100,000 '[' is a RecursionError), and so do json.dumps, DRF's
JSONField and the JSON columns on whatever is stored. PostgreSQL's text and
jsonb cannot hold the NUL character, so a string holding one is refused here,
naming where it is, rather than failing in the database.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from rest_framework import parsers

MAX_DEPTH = 100
NUL_MESSAGE = "Must not contain the NUL character (\\u0000)."
DEPTH_MESSAGE = f"JSON nested deeper than {MAX_DEPTH} levels."

# orjson refuses nesting deeper than 1024 levels. Parsed inside _PAD arrays of
# our own, a body deeper than MAX_DEPTH reaches that limit: the bound costs
# one copy of the body instead of a walk over everything parsed.
_ORJSON_DEPTH = 1024
_PAD = _ORJSON_DEPTH - MAX_DEPTH
_OPEN, _CLOSE = b"[" * _PAD, b"]" * _PAD


def _orjson_bounded(raw: bytes) -> Any:
    """The body parsed by orjson, or _REFUSED for the standard library to read (and explain)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        # No deeper than its brackets: parsed as it is, without the padding's
        # thousand-odd arrays (which cost more than a small body itself).
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _REFUSED
    try:
        value = orjson.loads(_OPEN + raw + _CLOSE)
    except orjson.JSONDecodeError:
        return _REFUSED
    for _ in range(_PAD):
        # A body that closes our arrays ("1],[2") must leave one of them with
        # two items (or unbalanced, which orjson refused): it is not valid alone.
        if len(value) != 1:
            return _REFUSED
        value = value[0]
    return value


_REFUSED = object()


def _strict_constant(name: str):
    raise ValueError(f"{name} is not a JSON value (out of range float values are not JSON compliant)")


def json_parse(raw: bytes | str, *, allow_nan: bool = False, field: str = "body") -> Any:
    """Parse a request body; a ValidationError naming ``field`` (or the path inside it) if refused.

    ``field=""`` names the top level's keys as fields of their own (``source.packages``).
    ``allow_nan`` accepts the NaN and Infinity literals that Python writes (the
    predict endpoint lets a column check refuse them, naming the column).
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    value = _orjson_bounded(data)
    if value is not _REFUSED:
        if b"\\u0000" in data:  # a NUL in a JSON string is always written escaped
            check_json_value(value, field=field)
        return value
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_constant=None if allow_nan else _strict_constant)
    except RecursionError:
        raise ValidationError({field or "body": DEPTH_MESSAGE}) from None
    except ValueError as exc:
        raise ValidationError({field or "body": f"Not valid JSON: {exc}"}) from None
    return check_json_value(value, field=field)


def check_json_value(value: Any, *, field: str) -> Any:
    """``value`` unchanged; a ValidationError if it nests deeper than MAX_DEPTH, or naming
    the first place (``field.key[2]``) that holds text no database stores: a NUL
    character or a lone surrogate."""
    stack: list[tuple[Any, str, int]] = [(value, field, 1)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise ValidationError({field or "body": DEPTH_MESSAGE})
            for key in item:
                problem = _text_problem(key) if isinstance(key, str) else None
                if problem:
                    raise ValidationError({where or "body": f"A key {problem[0].lower()}{problem[1:]}"})
            stack.extend((child, f"{where}.{key}" if where else key, depth + 1)
                         for key, child in reversed(item.items()))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise ValidationError({field or "body": DEPTH_MESSAGE})
            stack.extend((item[i], f"{where or 'body'}[{i}]", depth + 1) for i in reversed(range(len(item))))
        elif isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                raise ValidationError({where or "body": problem})
    return value


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Python's json reads "\ud800"; no database can store it.
        return "Must be valid Unicode (a lone surrogate such as \\ud800 is not)."
    return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser on json_parse: bounded, NUL-free, at orjson's speed.

    Errors name the body's fields as the views do: a NUL in a run's source
    packages is a 400 naming ``source.packages.<name>``.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read()
        if encoding.lower().replace("-", "") != "utf8":
            try:
                raw = raw.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                raise ValidationError({"body": f"The body is not valid {encoding}."}) from None
        return json_parse(raw, field="")
