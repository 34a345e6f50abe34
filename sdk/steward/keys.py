"""The rules for keys and values, checked before anything is buffered.

The server applies the same rules (and will keep an equal copy of
:func:`param_text`), so a value that passes here is stored as it is.

* A key (of a param, metric or tag) is 1-250 characters of letters, digits
  and ``_ - . / space :``, and is not an absolute or parent path.
* A param or tag value is stored as text, in one canonical form: MLflow's,
  ``str()`` of the plain Python value after NumPy scalars are unwrapped
  (``np.float64(1.0)`` -> ``"1.0"``, ``None`` -> ``"None"``, ``True`` -> ``"True"``).
* A metric value is a real number: a Python ``int`` or ``float`` or a NumPy
  integer or floating scalar. ``bool`` is not a number here, and neither is a
  string such as ``"0.3"``.
"""

from __future__ import annotations

import numbers
import re
import sys
from typing import Any

from steward.errors import InvalidInputError, InvalidTypeError

# \Z, never $ (as on the server): "$" also matches before a final newline.
KEY_RE = re.compile(r"^[A-Za-z0-9_\-./ :]+\Z")
KEY_MAX = 250
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000


def key_check(key: Any) -> str:
    """Return ``key`` if it is a valid param, metric or tag key.

    Raises:
        InvalidInputError: the key is empty, too long, has characters outside
            ``A-Z a-z 0-9 _ - . / space :``, or is an absolute or parent path.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"A key must be a non-empty string, got {key!r}.")
    if len(key) > KEY_MAX:
        raise InvalidInputError(f"Key {key[:60]!r}... is longer than {KEY_MAX} characters.")
    if not KEY_RE.fullmatch(key):
        raise InvalidInputError(f"Key {key[:60]!r} may only contain letters, digits and _ - . / space :")
    if key.startswith("/") or ".." in key.split("/"):
        raise InvalidInputError(f"Key {key[:60]!r} must not be an absolute or parent path.")
    return key


def _plain(value: Any) -> Any:
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


def param_text(value: Any) -> str:
    """The one text a param (or tag) value is stored as: ``str()`` after NumPy scalars are unwrapped.

    Examples:
        >>> param_text(0.1), param_text(None), param_text(True)
        ('0.1', 'None', 'True')
        >>> import numpy as np; param_text(np.float64(1.0)), param_text([np.int64(3)])
        ('1.0', '[3]')
    """
    if type(value) is str:
        return value
    return str(_plain(value))


def value_text(value: Any, limit: int, what: str) -> str:
    """:func:`param_text`, checked against a length limit and for NUL characters.

    Raises:
        InvalidInputError: the text is longer than ``limit`` or holds a NUL.
    """
    text = param_text(value)
    if len(text) > limit:
        raise InvalidInputError(f"{what} value is longer than {limit} characters.")
    if "\x00" in text:
        raise InvalidInputError(f"{what} value must not contain NUL characters.")
    return text


def metric_value(value: Any, key: str) -> float | str:
    """A metric value as a batch carries it: a float, or ``"NaN"``/``"Infinity"``/``"-Infinity"``.

    Raises:
        InvalidTypeError: (a ``TypeError``) the value is not a real number:
            a string, a boolean, ``None``, a tensor or an array.
    """
    if type(value) is not float:
        # NumPy registers its integer and floating scalars as numbers.Real; np.bool_ is not one.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidTypeError(_not_a_number(value, key))
        value = float(value)
    if value - value != 0.0:  # NaN or +/-inf: JSON cannot carry them as numbers
        if value != value:
            return "NaN"
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _not_a_number(value: Any, key: str) -> str:
    kind = type(value).__name__
    if isinstance(value, bool) or kind == "bool_":
        return f"Metric {key!r}: value must be a number, not a boolean."
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return (f"Metric {key!r}: value must be a number, got a {kind}; "
                f"call .item() on a one-element tensor or array.")
    return f"Metric {key!r}: value must be a number (int or float), got {kind} {value!r:.40}."
