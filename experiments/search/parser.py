"""The filter language and sort keys: text in, conditions and order keys out.

    metrics.acc > 0.9 and params.model = 'rf' and tags.`team/name` = 'x'
        and attributes.status IN ('FINISHED', 'KILLED')
    (params.model = 'rf' or params.model = 'gb') and params.C > 0.5

Beyond MLflow's language: OR (AND binds tighter) and parentheses, and a param
compared with a number (``params.C > 0.5``, ``params.depth = 3``) compares as
numbers; a run whose value is not a number does not match.

Nothing here touches the database. Every error names its field and, for text
the user wrote, the position where the first problem starts.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from experiments.models import KEY_MAX_LENGTH
from experiments.validation import KEY_RE

MAX_FILTER_LENGTH = 10_000
MAX_CONDITIONS = 100
MAX_IN_VALUES = 1_000
MAX_ORDER_BY = 10

NUMBER, TEXT, TIME, ID = "number", "text", "time", "id"
NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
TEXT_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
ID_OPS = ("=", "!=", "IN", "NOT IN")
OPS_FOR_TYPE = {NUMBER: NUMERIC_OPS, TIME: NUMERIC_OPS, TEXT: TEXT_OPS, ID: ID_OPS}

# The prefixes MLflow accepts, each mapped to what it names.
PREFIXES = {
    "metric": "metric", "metrics": "metric",
    "param": "param", "params": "param", "parameter": "param", "parameters": "param",
    "tag": "tag", "tags": "tag",
    "attribute": "attribute", "attributes": "attribute", "attr": "attribute", "run": "attribute",
}


@dataclass(frozen=True)
class Attribute:
    name: str
    field: str
    type: str
    nullable: bool = False


_ATTRIBUTE_LIST = [
    Attribute("status", "status", TEXT),
    Attribute("name", "name", TEXT),
    Attribute("start_time", "start_time", TIME),
    Attribute("end_time", "end_time", TIME, nullable=True),
    Attribute("author", "author__username", TEXT, nullable=True),
    Attribute("run_id", "id", ID),
    Attribute("experiment", "experiment__name", TEXT),
]
ATTRIBUTES = {a.name: a for a in _ATTRIBUTE_LIST}
ATTRIBUTES["run_name"] = ATTRIBUTES["name"]
ATTRIBUTES["id"] = ATTRIBUTES["run_id"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_\-./:]+", re.ASCII)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


def fail(field: str, message: str, pos: int | None = None):
    if pos is not None:
        message = f"{message} (at position {pos + 1})"
    raise ValidationError({field: message})


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, op, word, "(", ")", ",", end
    value: Any
    pos: int
    text: str

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the input"
        return self.text if self.kind == "string" else repr(self.text)


class _Lexer:
    """Produces tokens on demand, so the first error by position is the one reported."""

    def __init__(self, text: str, field: str):
        self.text = text
        self.field = field
        self.i = 0
        self._peeked: Token | None = None

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> Token:
        token = self.peek()
        self._peeked = None
        return token

    def fail(self, message: str, pos: int):
        fail(self.field, message, pos)

    def _scan(self) -> Token:
        text, n, i = self.text, len(self.text), self.i
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            self.i = i
            return Token("end", None, i, "")
        c = text[i]
        if c in "(),":
            self.i = i + 1
            return Token(c, c, i, c)
        for op in _OPERATORS:
            if text.startswith(op, i):
                self.i = i + len(op)
                return Token("op", op, i, op)
        if c in "'\"":
            return self._string(i)
        if c == "`":
            self.fail("Backticks quote a key after a prefix, as in metrics.`val/loss`", i)
        number = _NUMBER_RE.match(text, i)
        if number:
            end = number.end()
            if end < n and (text[end].isalnum() or text[end] in "_.`'\""):
                self.fail(f"Malformed number {text[i:end + 1]!r}", i)
            value = float(number.group())
            if not math.isfinite(value):
                self.fail(f"Number {number.group()!r} is out of range", i)
            self.i = end
            return Token("number", value, i, number.group())
        word = _WORD_RE.match(text, i)
        if word:
            end = word.end()
            if end < n and text[end] == ".":
                return self._identifier(word.group(), i, end + 1)
            self.i = end
            return Token("word", word.group().upper(), i, word.group())
        if text.startswith("--", i):
            self.fail("Comments ('--') are not allowed", i)
        self.fail(f"Unexpected character {c!r}", i)

    def _string(self, start: int) -> Token:
        text, n, quote = self.text, len(self.text), self.text[start]
        out: list[str] = []
        i = start + 1
        while i < n:
            c = text[i]
            if c == "\\" and i + 1 < n:
                nxt = text[i + 1]
                # Unknown escapes keep their backslash, so LIKE patterns can say \% and \_.
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
            elif c == quote:
                if i + 1 < n and text[i + 1] == quote:  # SQL style: '' inside '...'
                    out.append(quote)
                    i += 2
                else:
                    self.i = i + 1
                    return Token("string", "".join(out), start, text[start:i + 1])
            else:
                out.append(c)
                i += 1
        self.fail("Unterminated string", start)

    def _identifier(self, word: str, start: int, i: int) -> Token:
        text, n = self.text, len(self.text)
        kind = PREFIXES.get(word.lower())
        if kind is None:
            self.fail(f"Unknown prefix '{word}': use metrics., params., tags. or attributes.", start)
        if i < n and text[i] in "`\"":
            close = text.find(text[i], i + 1)
            if close == -1:
                self.fail("Unterminated quoted key", i)
            key, end = text[i + 1:close], close + 1
        else:
            bare = _BARE_KEY_RE.match(text, i)
            if not bare:
                self.fail(f"Expected a key after '{word}.'", i)
            key, end = bare.group(), bare.end()
        if not key:
            self.fail("Empty key", i)
        if len(key) > KEY_MAX_LENGTH:
            self.fail(f"Key is longer than {KEY_MAX_LENGTH} characters", i)
        if not KEY_RE.fullmatch(key):
            self.fail(f"Key {key[:60]!r} may only contain letters, digits and _ - . / space :", i)
        self.i = end
        return Token("ident", (kind, key), start, text[start:end])


@dataclass(frozen=True)
class Condition:
    kind: str  # metric, param, tag, attribute
    key: str  # the metric/param/tag key, or the attribute's canonical name
    op: str
    value: Any  # float (metric), int ms (time), str, uuid.UUID, or a list of those for IN
    pos: int


def value_type(kind: str, key: str) -> str:
    return NUMBER if kind == "metric" else ATTRIBUTES[key].type if kind == "attribute" else TEXT


def _resolve(lex: _Lexer, token: Token) -> tuple[str, str]:
    kind, key = token.value
    if kind == "attribute":
        if key not in ATTRIBUTES:
            names = ", ".join(sorted(ATTRIBUTES))
            lex.fail(f"Unknown attribute '{key}': use one of {names}", token.pos)
        key = ATTRIBUTES[key].name
    return kind, key


def _expect_identifier(lex: _Lexer, what: str) -> Token:
    token = lex.next()
    if token.kind == "ident":
        return token
    if token.kind == "word" and token.text.lower() in ATTRIBUTES:
        lex.fail(f"Write attributes.{token.text.lower()} rather than '{token.text}'", token.pos)
    lex.fail(
        f"Expected {what} such as metrics.acc, params.model, tags.team or attributes.status, "
        f"found {token.describe()}",
        token.pos,
    )


def _comparator(lex: _Lexer, ident: Token) -> tuple[str, Token]:
    token = lex.next()
    if token.kind == "op":
        return token.value, token
    if token.kind == "word" and token.value in ("LIKE", "ILIKE", "IN"):
        return token.value, token
    if token.kind == "word" and token.value == "NOT":
        after = lex.next()
        if after.kind == "word" and after.value == "IN":
            return "NOT IN", token
        lex.fail(f"Expected IN after NOT, found {after.describe()}", after.pos)
    lex.fail(
        f"Expected a comparator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN) after {ident.text}, "
        f"found {token.describe()}",
        token.pos,
    )


def ms_to_datetime(ms: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=ms)


_NUMERIC_TEXT_RE = re.compile(r"\s*[+-]?(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})(?:[eE][+-]?\d{1,2})?\s*")


def _literal(lex: _Lexer, ident: Token, vtype: str, op: str = "=") -> Any:
    token = lex.next()
    if vtype == TEXT and ident.value[0] == "param":
        # A param compared with a number compares as a number; an order needs one.
        if token.kind == "number":
            return token.value
        if op in (">", ">=", "<", "<="):
            if token.kind == "string" and _NUMERIC_TEXT_RE.fullmatch(token.value):
                return float(token.value)
            lex.fail(f"{ident.text} {op} compares {ident.text} as a number, and {token.describe()} "
                     "is not a number", token.pos)
    if vtype in (NUMBER, TIME):
        if token.kind != "number":
            lex.fail(f"{ident.text} compares with a number, found {token.describe()}", token.pos)
        if vtype == NUMBER:
            return token.value
        if not token.value.is_integer():
            lex.fail(f"{ident.text} compares with whole milliseconds since the epoch", token.pos)
        ms = int(token.value)
        try:
            ms_to_datetime(ms)
            ms_to_datetime(ms + 1)
        except OverflowError:
            lex.fail(f"{token.text} is not a time in milliseconds since the epoch", token.pos)
        return ms
    if token.kind != "string":
        lex.fail(f"{ident.text} compares with a quoted string, found {token.describe()}", token.pos)
    if vtype == ID:
        try:
            return uuid.UUID(token.value)
        except ValueError:
            lex.fail(f"{token.text} is not a run id", token.pos)
    return token.value


def _in_list(lex: _Lexer, ident: Token, vtype: str) -> list:
    opening = lex.next()
    if opening.kind != "(":
        lex.fail(f"Expected '(' to start the IN list, found {opening.describe()}", opening.pos)
    values = [_literal(lex, ident, vtype)]
    while True:
        token = lex.next()
        if token.kind == ")":
            break
        if token.kind != ",":
            lex.fail(f"Expected ',' or ')' in the IN list, found {token.describe()}", token.pos)
        values.append(_literal(lex, ident, vtype))
        if len(values) > MAX_IN_VALUES:
            lex.fail(f"An IN list holds at most {MAX_IN_VALUES} values", token.pos)
    return values


def _condition(lex: _Lexer) -> Condition:
    ident = _expect_identifier(lex, "an identifier")
    kind, key = _resolve(lex, ident)
    vtype = value_type(kind, key)
    op, op_token = _comparator(lex, ident)
    allowed = OPS_FOR_TYPE[vtype] if kind != "param" else TEXT_OPS + (">", ">=", "<", "<=")
    if op not in allowed:
        lex.fail(f"{op} is not valid for {ident.text}: use one of {', '.join(allowed)}", op_token.pos)
    if op in ("IN", "NOT IN"):
        value: Any = _in_list(lex, ident, vtype)
        if len({type(item) for item in value}) > 1:
            lex.fail(f"The IN list of {ident.text} mixes numbers and strings", ident.pos)
    else:
        value = _literal(lex, ident, vtype, op)
        if isinstance(value, float) and op in ("LIKE", "ILIKE"):
            lex.fail(f"{op} compares {ident.text} with a quoted pattern, found a number", ident.pos)
    return Condition(kind, key, op, value, ident.pos)


def _check_text(text: Any, field: str, max_length: int) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        fail(field, "Must be a string.")
    if len(text) > max_length:
        fail(field, f"Is longer than {max_length} characters.")
    if "\x00" in text:
        fail(field, "Must not contain NUL characters.")
    return text


@dataclass(frozen=True)
class Group:
    """Conditions (or groups) joined by one connective."""

    op: str  # AND, OR
    items: tuple  # of Condition | Group
    pos: int


MAX_DEPTH = 20


class _FilterParser:
    """expr := conj (OR conj)*;  conj := primary (AND primary)*;  primary := '(' expr ')' | condition."""

    def __init__(self, lex: _Lexer):
        self.lex = lex
        self.count = 0

    def expr(self, depth: int) -> Condition | Group:
        start = self.lex.peek().pos
        items = [self.conj(depth)]
        while self._word("OR"):
            self.lex.next()
            items.append(self.conj(depth))
        return items[0] if len(items) == 1 else Group("OR", tuple(items), start)

    def conj(self, depth: int) -> Condition | Group:
        start = self.lex.peek().pos
        items = [self.primary(depth)]
        while self._word("AND"):
            self.lex.next()
            items.append(self.primary(depth))
        return items[0] if len(items) == 1 else Group("AND", tuple(items), start)

    def primary(self, depth: int) -> Condition | Group:
        token = self.lex.peek()
        if token.kind == "(":
            if depth >= MAX_DEPTH:
                self.lex.fail(f"Parentheses nest at most {MAX_DEPTH} deep", token.pos)
            self.lex.next()
            inner = self.expr(depth + 1)
            closing = self.lex.next()
            if closing.kind != ")":
                self.lex.fail(f"Expected AND, OR or ')' to close the '(' at position {token.pos + 1}, "
                              f"found {closing.describe()}", closing.pos)
            return inner
        self.count += 1
        if self.count > MAX_CONDITIONS:
            self.lex.fail(f"A filter holds at most {MAX_CONDITIONS} conditions", token.pos)
        return _condition(self.lex)

    def _word(self, word: str) -> bool:
        token = self.lex.peek()
        return token.kind == "word" and token.value == word


def parse_filter(text: str | None) -> list[Condition | Group]:
    """Parse a filter string into terms joined by AND (a term: a condition or an OR group); '' is none."""
    text = _check_text(text, "filter", MAX_FILTER_LENGTH)
    lex = _Lexer(text, "filter")
    if lex.peek().kind == "end":
        return []
    tree = _FilterParser(lex).expr(0)
    token = lex.next()
    if token.kind != "end":
        if token.kind == ")":
            lex.fail("Unmatched ')'", token.pos)
        lex.fail(f"Expected AND, OR or the end of the filter, found {token.describe()}", token.pos)
    if isinstance(tree, Group) and tree.op == "AND":
        return list(tree.items)
    return [tree]


@dataclass(frozen=True)
class OrderKey:
    kind: str
    key: str
    descending: bool

    @property
    def value_type(self) -> str:
        return value_type(self.kind, self.key)

    @property
    def nullable(self) -> bool:
        return self.kind != "attribute" or ATTRIBUTES[self.key].nullable


DEFAULT_ORDER = [OrderKey("attribute", "start_time", True)]


def parse_order_by(items: list[str] | str | None) -> list[OrderKey]:
    """Parse ["metrics.acc DESC", "params.lr", ...]; an empty list means the default order."""
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list | tuple):
        fail("order_by", "Must be a list of strings such as 'metrics.acc DESC'.")
    if len(items) > MAX_ORDER_BY:
        fail("order_by", f"At most {MAX_ORDER_BY} sort keys.")
    keys = []
    for n, item in enumerate(items):
        field = "order_by"
        text = item if isinstance(item, str) else ""
        try:
            _check_text(item, field, 1_000)
            lex = _Lexer(text, field)
            ident = _expect_identifier(lex, "a sort key")
            kind, key = _resolve(lex, ident)
            token = lex.next()
            descending = False
            if token.kind == "word" and token.value in ("ASC", "DESC"):
                descending = token.value == "DESC"
                token = lex.next()
            if token.kind != "end":
                lex.fail(f"Expected ASC, DESC or the end of the sort key, found {token.describe()}",
                         token.pos)
        except ValidationError as exc:
            message = "; ".join(exc.message_dict[field])
            fail(field, f"Item {n + 1} ({text[:80]!r}): {message}")
        keys.append(OrderKey(kind, key, descending))
    return keys
