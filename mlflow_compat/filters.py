"""MLflow's small filter language for experiments, registered models, versions and logged models:
``name = 'x'``, ``name LIKE 'x%'``, ``run_id IN ('a', 'b')``, ``version_number >= 2``,
``tags.`key` != 'v'``, joined by AND, and its ``order_by`` (``name ASC``, ``version_number DESC``),
applied to what a project holds (a project's models and versions are few enough to test one by one)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlflow_compat import errors

_STRING = r"""'(?:[^']|'')*'|"[^"]*\""""
_NUMBER = r"-?\d+"
_CONDITION = re.compile(
    r"^\s*(?P<field>(?:tags?\.)?(?:`[^`]+`|\"[^\"]+\"|[\w.\-]+))\s*"
    r"(?P<op>!=|<=|>=|=|<|>|NOT\s+IN\b|IN\b|ILIKE\b|LIKE\b)\s*"
    rf"(?P<value>{_STRING}|{_NUMBER}|\((?:\s*(?:{_STRING}|{_NUMBER})\s*,?)*\))\s*$",
    re.IGNORECASE,
)
_ITEM = rf"(?:{_STRING}|{_NUMBER})"
_LIST = re.compile(rf"\s*{_ITEM}\s*(?:,\s*{_ITEM}\s*)*")
_AND = re.compile(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)
STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}
NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"}
TAG_OPS = {"=", "!=", "LIKE", "ILIKE"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Condition:
    tag: bool
    field: str
    op: str
    value: Any  # a string, an int (numeric fields), or a tuple of them (IN)

    def test(self, fields: dict, tags: dict) -> bool:
        actual = tags.get(self.field) if self.tag else fields.get(self.field)
        if self.op in ("!=", "NOT IN") and actual is None:
            return True
        if actual is None:
            return False
        if self.op == "IN":
            return actual in self.value
        if self.op == "NOT IN":
            return actual not in self.value
        if self.op in _COMPARE:
            return _COMPARE[self.op](actual, self.value)
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in self.value)
        flags = re.IGNORECASE | re.DOTALL if self.op == "ILIKE" else re.DOTALL
        return re.fullmatch(pattern, str(actual), flags) is not None


def _literal(text: str, numeric: bool, where: str) -> Any:
    if text[0] in "'\"":
        value = text[1:-1].replace("''", "'") if text[0] == "'" else text[1:-1]
    else:
        value = text
    if not numeric:
        if text[0] not in "'\"":
            raise errors.invalid(f"{where}: put the value {text[:40]} in quotes.")
        return value
    try:
        return int(value)
    except ValueError:
        raise errors.invalid(f"{where}: {value[:40]!r} is not a whole number.") from None


def parse(text: str | None, fields: set[str], numeric: set[str] = frozenset(),
          normalise: dict[str, Callable[[str], str]] | None = None) -> list[Condition]:
    """Conditions on ``fields`` (``numeric`` ones compare as whole numbers) and on tags.

    ``normalise`` maps a field to how its values are written before comparing (run ids with
    or without dashes). Anything else is INVALID_PARAMETER_VALUE naming what was not understood.
    """
    if not text or not text.strip():
        return []
    out = []
    for part in _AND.split(text.strip()):
        match = _CONDITION.match(part)
        if match is None:
            raise errors.invalid(f"Invalid filter '{text[:200]}': cannot read {part.strip()[:100]!r}.")
        field, raw = match.group("field"), match.group("value")
        op = " ".join(match.group("op").upper().split())
        tag = field.lower().startswith(("tag.", "tags."))
        if tag:
            field = field.split(".", 1)[1]
        field = field.strip("`\"")
        is_number = not tag and field in numeric
        if not tag and field not in fields and not is_number:
            raise errors.invalid(f"Invalid filter '{text[:200]}': cannot filter on '{field[:100]}'.")
        allowed = TAG_OPS if tag else NUMBER_OPS if is_number else STRING_OPS
        if op not in allowed:
            raise errors.invalid(f"Invalid filter '{text[:200]}': '{op}' is not an operator for "
                                 f"'{field[:100]}' (use {', '.join(sorted(allowed))}).")
        where = f"Invalid filter '{text[:200]}'"
        if op in ("IN", "NOT IN"):
            if not raw.startswith("("):
                raise errors.invalid(f"{where}: {op} takes a list in parentheses.")
            body = raw[1:-1]
            if not _LIST.fullmatch(body):
                raise errors.invalid(f"{where}: {op} takes a list of values separated by commas.")
            items = re.findall(_ITEM, body)
            value: Any = tuple(_literal(item, is_number, where) for item in items)
        elif raw.startswith("("):
            raise errors.invalid(f"{where}: only IN and NOT IN take a list.")
        else:
            value = _literal(raw, is_number, where)
        fix = (normalise or {}).get(field) if not tag else None
        if fix is not None:
            value = tuple(fix(item) for item in value) if isinstance(value, tuple) else fix(value)
        out.append(Condition(tag, field, op, value))
    return out


def matches(conditions: list[Condition], fields: dict, tags: dict) -> bool:
    return all(c.test(fields, tags) for c in conditions)


_ORDER = re.compile(r"^\s*(?P<field>[\w.]+|`[^`]+`)\s*(?P<dir>ASC|DESC)?\s*$", re.IGNORECASE)


def order_parse(clauses: list, allowed: dict[str, str]) -> list[tuple[str, bool]]:
    """MLflow's order_by: ``field [ASC|DESC]`` clauses over ``allowed`` (a spelling → its field).
    Returns (field, descending) pairs."""
    out = []
    for clause in clauses:
        match = _ORDER.match(clause) if isinstance(clause, str) else None
        field = match.group("field").strip("`").lower() if match else None
        if field not in allowed:
            raise errors.invalid(f"Invalid order_by clause '{str(clause)[:100]}': order by "
                                 f"{', '.join(sorted(allowed))}, each optionally ASC or DESC.")
        out.append((allowed[field], (match.group("dir") or "ASC").upper() == "DESC"))
    return out


def order_apply(items: list, order: list[tuple[str, bool]], value_of: Callable[[Any, str], Any]) -> list:
    """Sort by each (field, descending) pair, the first one strongest; Python's sort is stable,
    so sorting by the weakest key first and the strongest last gives the combined order."""
    for field, descending in reversed(order):
        items = sorted(items, key=lambda item, f=field: value_of(item, f), reverse=descending)
    return items
