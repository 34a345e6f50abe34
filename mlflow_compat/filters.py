"""MLflow's small filter language for registered models, versions and logged models:
``name = 'x'``, ``name LIKE 'x%'``, ``tags.`key` != 'v'``, joined by AND, applied to what a
project holds (a project's models and versions are few enough to test one by one)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlflow_compat import errors

_CONDITION = re.compile(
    r"""^\s*(?P<field>(?:tags?\.)?(?:`[^`]+`|"[^"]+"|[\w.\-]+))\s*(?P<op>!=|=|ILIKE|LIKE)\s*"""
    r"""(?P<value>'(?:[^']|'')*'|"[^"]*")\s*$""",
    re.IGNORECASE,
)
_AND = re.compile(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    tag: bool
    field: str
    op: str
    value: str

    def test(self, fields: dict, tags: dict) -> bool:
        actual = tags.get(self.field) if self.tag else fields.get(self.field)
        if self.op == "!=":
            return actual is None or str(actual) != self.value
        if actual is None:
            return False
        if self.op == "=":
            return str(actual) == self.value
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in self.value)
        flags = re.IGNORECASE | re.DOTALL if self.op == "ILIKE" else re.DOTALL
        return re.fullmatch(pattern, str(actual), flags) is not None


def parse(text: str | None, fields: set[str]) -> list[Condition]:
    if not text or not text.strip():
        return []
    out = []
    for part in _AND.split(text.strip()):
        match = _CONDITION.match(part)
        if match is None:
            raise errors.invalid(f"Invalid filter '{text[:200]}': cannot read {part.strip()[:100]!r}.")
        field, op, value = match.group("field"), match.group("op").upper(), match.group("value")
        tag = field.lower().startswith(("tag.", "tags."))
        if tag:
            field = field.split(".", 1)[1]
        field = field.strip("`\"")
        if not tag and field not in fields:
            raise errors.invalid(f"Invalid filter '{text[:200]}': cannot filter on '{field[:100]}'.")
        quote = value[0]
        value = value[1:-1].replace("''", "'") if quote == "'" else value[1:-1]
        out.append(Condition(tag, field, op, value))
    return out


def matches(conditions: list[Condition], fields: dict, tags: dict) -> bool:
    return all(c.test(fields, tags) for c in conditions)
