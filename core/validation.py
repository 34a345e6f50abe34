"""Checks on user-supplied keys and values, shared by every write path of every app.

The SDK keeps an equal copy (``steward.keys``: it imports nothing of the server);
``tests/core/test_key_rules.py`` keeps the two equal.
"""

from __future__ import annotations

import math
import re
import sys

from django.core.exceptions import ValidationError

KEY_MAX_LENGTH = 250
PARAM_VALUE_MAX_LENGTH = 6000
TAG_VALUE_MAX_LENGTH = 8000

# \Z, never $: "$" also matches before a final newline, so "loss\n" would pass.
KEY_RE = re.compile(r"^[A-Za-z0-9_\-./ :]+\Z")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NON_FINITE = {"nan": math.nan, "inf": math.inf, "infinity": math.inf,
              "-inf": -math.inf, "-infinity": -math.inf}


def key_check(key: object, field: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValidationError({field: "A key must be a non-empty string."})
    if len(key) > KEY_MAX_LENGTH:
        raise ValidationError({field: f"Key is longer than {KEY_MAX_LENGTH} characters."})
    if not KEY_RE.fullmatch(key):
        raise ValidationError(
            {field: f"Key '{key[:60]}' may only contain letters, digits and _ - . / space :"}
        )
    if key.startswith("/") or ".." in key.split("/"):
        raise ValidationError({field: f"Key '{key[:60]}' must not be an absolute or parent path."})
    return key


def _plain(value: object) -> object:
    """NumPy scalars as the Python values they hold, also inside lists, tuples and dicts."""
    np = sys.modules.get("numpy")
    if np is None:  # no NumPy scalar can exist before NumPy is imported
        return value
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (list, tuple):
        return type(value)(_plain(v) for v in value)
    if type(value) is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def param_text(value: object) -> str:
    """The one text a param or tag value is stored as, whatever path it came by.

    MLflow's form: ``str()`` of the plain Python value after NumPy scalars are
    unwrapped, so ``np.float64(1.0)`` -> ``"1.0"``, ``None`` -> ``"None"``,
    ``True`` -> ``"True"``. An equal copy lives in the SDK (``steward.keys.param_text``).
    """
    if type(value) is str:
        return value
    return str(_plain(value))


def value_text(value: object, field: str, max_length: int) -> str:
    if isinstance(value, (list, dict)):
        # JSON arrays and objects are refused: their text would depend on the sender's JSON encoder.
        raise ValidationError({field: "Value must be a string, a number, a boolean or null."})
    value = param_text(value)
    if len(value) > max_length:
        raise ValidationError({field: f"Value is longer than {max_length} characters."})
    if "\x00" in value:
        raise ValidationError({field: "Value must not contain NUL characters."})
    return value


def param_value(value: object, field: str) -> str:
    return value_text(value, field, PARAM_VALUE_MAX_LENGTH)


def tag_value(value: object, field: str) -> str:
    return value_text(value, field, TAG_VALUE_MAX_LENGTH)


def metric_value(value: object, field: str) -> float:
    """A float; NaN and +/-inf are kept, given as numbers or as the strings 'NaN', 'Infinity'."""
    if isinstance(value, bool):
        raise ValidationError({field: "Metric value must be a number, not a boolean."})
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:
            raise ValidationError({field: "Metric value is out of range."}) from None
    if isinstance(value, str) and value.strip().lower() in NON_FINITE:
        return NON_FINITE[value.strip().lower()]
    raise ValidationError({field: f"Metric value must be a number, got {str(value)[:40]!r}."})


def int64(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValidationError({field: "Must be an integer."})
        # A whole float is an integer, but from 2**63 on it is out of range even
        # where int() would round it back in: an integer literal past int64
        # parses as such a float.
        if not -(2.0**63) < value < 2.0**63:
            raise ValidationError({field: "Must fit in a signed 64-bit integer."})
        value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError({field: "Must fit in a signed 64-bit integer."})
    return value


def float_out(value: float | None) -> float | str:
    """A metric value for JSON: non-finite values become strings JSON can carry."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return value
