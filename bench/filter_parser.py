"""The run filter language as a lark grammar (LALR) beside the hand-written parser.

    make bench-deps && .venv/bin/python bench/filter_parser.py [RANDOM_FILTERS]

The app's venv runs it (the parser needs Django); lark, which only the benchmark needs, comes
from .venv-bench (requirements-bench.txt), appended to the path so nothing else is taken from it.

Every parser reads the same corpora: the filters the search tests accept must give the same
Condition/Group structures, the word-for-word errors of test_search_parser_errors.py the same
message, and every other malformed filter in the tests (and random token soup, 5,000 by
default, seeded) the same result as the hand-written parser. Then each parses a typical and a
long filter (timeit, best of 5).

Two lark versions: one as lark is usually used (parse to a tree, check it with a Transformer,
lark's own errors), and one that keeps the hand-written messages: its checks run when the LALR
parser shifts each token (lark calls a Transformer's token methods then), so the first problem
by position is still the one reported, and lark's UnexpectedToken/UnexpectedCharacters are
mapped back to the hand-written wording by looking at the parser's value stack.
"""

from __future__ import annotations

import math
import os
import random
import re
import sys
import timeit
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import lark  # noqa: F401
except ImportError:
    sys.path.extend(str(p) for p in ROOT.glob(".venv-bench/lib/python3*/site-packages"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")

import django  # noqa: E402

django.setup()

from django.core.exceptions import ValidationError  # noqa: E402
from lark import Lark, Transformer, Tree  # noqa: E402
from lark.exceptions import (  # noqa: E402
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from experiments.search import parser as hand  # noqa: E402

KEY_RE, KEY_MAX_LENGTH = hand.KEY_RE, hand.KEY_MAX_LENGTH  # the key rules the parser itself applies

GRAMMAR = r"""
start: expr
     |                                           -> empty
expr: conj (OR conj)*
conj: primary (AND primary)*
?primary: LPAR expr RPAR                         -> paren
        | condition
condition: IDENT comparator value                -> compare
         | IDENT IN LPAR value (COMMA value)* RPAR  -> in_list
         | IDENT NOT IN LPAR value (COMMA value)* RPAR  -> in_list
?comparator: OP | LIKE | ILIKE
?value: STRING | NUMBER

LPAR: "("
RPAR: ")"
COMMA: ","
OP: "!=" | ">=" | "<=" | "=" | ">" | "<"
AND.2: /and\b(?!\.)/i
OR.2: /or\b(?!\.)/i
NOT.2: /not\b(?!\.)/i
IN.2: /in\b(?!\.)/i
LIKE.2: /like\b(?!\.)/i
ILIKE.2: /ilike\b(?!\.)/i
IDENT.3: /(?i:metrics?|param(?:eter)?s?|tags?|attr(?:ibutes?)?|run)\.(?:`[^`]*`|"[^"]*"|[A-Za-z0-9_\-.\/:]+)/
STRING: /'(?:[^'\\]|\\.|'')*+'|"(?:[^"\\]|\\.|"")*+"/s
NUMBER: /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.`'"])/
WORD: /[A-Za-z_][A-Za-z0-9_]*/
%ignore /\s+/
"""

_ESCAPE_RES = {quote: re.compile(rf"\\(.)|{quote}{quote}", re.S) for quote in "'\""}


def fail(message, pos):
    hand.fail("filter", message, pos)


def describe(token) -> str:
    if token is None or token.type == "$END":
        return "the end of the input"
    return str(token) if token.type == "STRING" else repr(str(token))


def unquote(token) -> str:
    text = str(token)

    def one(match):
        if match.group(1) is not None:
            return hand._ESCAPES.get(match.group(1), "\\" + match.group(1))
        return text[0]  # a doubled quote

    return _ESCAPE_RES[text[0]].sub(one, text[1:-1])


def ident_parts(token):
    prefix, _, key = str(token).partition(".")
    if key[:1] in "`\"":
        key = key[1:-1]
    return hand.PREFIXES[prefix.lower()], key


class Build(Transformer):
    """Builds Condition/Group. The token callbacks run when the parser shifts the token, before the
    next one is read, so they check what the hand-written parser checks at the same point."""

    def __init__(self):
        super().__init__()
        self.state = None  # the LALR parser's state, for mapping errors
        self.reset()

    def reset(self):
        self.count = self.depth = 0
        self.ident = self.resolved = self.op = self.previous = None
        self.list_types = None  # the value types of the open IN list, if one is open
        self.types = {}

    def _shift(self, token):
        self.previous = token
        return token

    # Tokens, at shift time.
    def IDENT(self, token):
        self.count += 1
        if self.count > hand.MAX_CONDITIONS:
            fail(f"A filter holds at most {hand.MAX_CONDITIONS} conditions", token.start_pos)
        _check_token(token)
        kind, key = ident_parts(token)
        if kind == "attribute":
            if key not in hand.ATTRIBUTES:
                names = ", ".join(sorted(hand.ATTRIBUTES))
                fail(f"Unknown attribute '{key}': use one of {names}", token.start_pos)
            key = hand.ATTRIBUTES[key].name
        self.ident, self.resolved = token, (kind, key, hand.value_type(kind, key))
        self.types[token.start_pos] = self.resolved
        return self._shift(token)

    def _op(self, token, op):
        kind, _, vtype = self.resolved
        allowed = hand.OPS_FOR_TYPE[vtype] if kind != "param" else hand.TEXT_OPS + (">", ">=", "<", "<=")
        if op not in allowed:
            pos = self.previous.start_pos if op == "NOT IN" else token.start_pos
            fail(f"{op} is not valid for {self.ident}: use one of {', '.join(allowed)}", pos)
        self.op = op
        return self._shift(token)

    def OP(self, token):
        return self._op(token, str(token))

    def LIKE(self, token):
        return self._op(token, "LIKE")

    def ILIKE(self, token):
        return self._op(token, "ILIKE")

    def IN(self, token):
        return self._op(token, "NOT IN" if self.previous.type == "NOT" else "IN")

    def LPAR(self, token):
        if self.previous is not None and self.previous.type == "IN":
            self.list_types, self.list_length = set(), 0
        else:
            if self.depth >= hand.MAX_DEPTH:
                fail(f"Parentheses nest at most {hand.MAX_DEPTH} deep", token.start_pos)
            self.depth += 1
        return self._shift(token)

    def RPAR(self, token):
        if self.list_types is not None:
            if len(self.list_types) > 1:
                fail(f"The IN list of {self.ident} mixes numbers and strings", self.ident.start_pos)
            self.list_types = None
        else:
            self.depth -= 1
        return self._shift(token)

    def STRING(self, token):
        return self._value(token)

    def NUMBER(self, token):
        return self._value(token)

    def _value(self, token):
        literal = _Literal(self._literal(token), token)
        if self.list_types is not None:
            self.list_types.add(type(literal.value))
            self.list_length += 1
            if self.list_length > hand.MAX_IN_VALUES:
                fail(f"An IN list holds at most {hand.MAX_IN_VALUES} values", self.previous.start_pos)
        elif isinstance(literal.value, float) and self.op in ("LIKE", "ILIKE"):
            fail(f"{self.op} compares {self.ident} with a quoted pattern, found a number",
                 self.ident.start_pos)
        self._shift(token)
        return literal

    COMMA = NOT = AND = OR = _shift

    def _literal(self, token):
        ident, (kind, _, vtype), op = self.ident, self.resolved, self.op
        number = token.type == "NUMBER"
        value = float(token) if number else unquote(token)
        if number and not math.isfinite(value):
            fail(f"Number {str(token)!r} is out of range", token.start_pos)
        if vtype == hand.TEXT and kind == "param":
            if number:
                return value
            if op in (">", ">=", "<", "<="):
                if hand._NUMERIC_TEXT_RE.fullmatch(value):
                    return float(value)
                fail(f"{ident} {op} compares {ident} as a number, and {describe(token)} is not a number",
                     token.start_pos)
        if vtype in (hand.NUMBER, hand.TIME):
            if not number:
                fail(f"{ident} compares with a number, found {describe(token)}", token.start_pos)
            if vtype == hand.NUMBER:
                return value
            if not value.is_integer():
                fail(f"{ident} compares with whole milliseconds since the epoch", token.start_pos)
            try:
                hand.ms_to_datetime(int(value))
                hand.ms_to_datetime(int(value) + 1)
            except OverflowError:
                fail(f"{token} is not a time in milliseconds since the epoch", token.start_pos)
            return int(value)
        if number:
            fail(f"{ident} compares with a quoted string, found {describe(token)}", token.start_pos)
        if vtype == hand.ID:
            try:
                return uuid.UUID(value)
            except ValueError:
                fail(f"{token} is not a run id", token.start_pos)
        return value

    # Rules, at reduce time.
    def compare(self, children):
        ident, op, literal = children
        kind, key, _ = self.types[ident.start_pos]
        return ident.start_pos, hand.Condition(kind, key, str(op).upper(), literal.value, ident.start_pos)

    def in_list(self, children):
        ident = children[0]
        kind, key, _ = self.types[ident.start_pos]
        op = "NOT IN" if children[1].type == "NOT" else "IN"
        values = [c.value for c in children if isinstance(c, _Literal)]
        return ident.start_pos, hand.Condition(kind, key, op, values, ident.start_pos)

    def paren(self, children):
        return children[0].start_pos, children[1][1]

    def _group(self, op, children):
        items = [c for c in children if isinstance(c, tuple)]
        if len(items) == 1:
            return items[0]
        return items[0][0], hand.Group(op, tuple(node for _, node in items), items[0][0])

    def conj(self, children):
        return self._group("AND", children)

    def expr(self, children):
        return self._group("OR", children)

    def start(self, children):
        tree = children[0][1]
        return list(tree.items) if isinstance(tree, hand.Group) and tree.op == "AND" else [tree]

    def empty(self, children):
        return []


class _Literal:
    __slots__ = ("value", "token")

    def __init__(self, value, token):
        self.value, self.token = value, token

    @property
    def start_pos(self):
        return self.token.start_pos


_NUMBER_START = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD_DOT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.", re.ASCII)


def _check_token(token) -> None:
    """The checks the hand-written lexer makes on a token it reads, whatever comes around it."""
    if token.type == "IDENT":
        _, key = ident_parts(token)
        key_pos = token.start_pos + str(token).index(".") + 1
        if not key:
            fail("Empty key", key_pos)
        if len(key) > KEY_MAX_LENGTH:
            fail(f"Key is longer than {KEY_MAX_LENGTH} characters", key_pos)
        if not KEY_RE.fullmatch(key):
            fail(f"Key {key[:60]!r} may only contain letters, digits and _ - . / space :", key_pos)
    elif token.type == "NUMBER" and not math.isfinite(float(token)):
        fail(f"Number {str(token)!r} is out of range", token.start_pos)


def _lexical_message(text: str, pos: int) -> tuple[str, int] | None:
    """What the text at pos says when lark's lexer cannot read it."""
    c = text[pos]
    if c in "'\"":
        return "Unterminated string", pos
    if c == "`":
        return "Backticks quote a key after a prefix, as in metrics.`val/loss`", pos
    number = _NUMBER_START.match(text, pos)
    if number:
        end = number.end()
        if not math.isfinite(float(number.group())):
            return f"Number {number.group()!r} is out of range", pos
        return f"Malformed number {text[pos:end + 1]!r}", pos
    word = _WORD_DOT.match(text, pos)
    if word:
        if word.group(1).lower() not in hand.PREFIXES:
            return f"Unknown prefix '{word.group(1)}': use metrics., params., tags. or attributes.", pos
        at = word.end()
        if at < len(text) and text[at] in "`\"":
            return "Unterminated quoted key", at
        return f"Expected a key after '{word.group(1)}.'", at
    if text.startswith("--", pos):
        return "Comments ('--') are not allowed", pos
    return f"Unexpected character {c!r}", pos


def _syntax_message(build, token, text: str) -> tuple[str, int]:
    state = build.state
    stack = _flat(state.value_stack)
    previous = stack[-1] if stack else None
    kind = getattr(previous, "type", None)
    pos = len(text) if token is None or token.type == "$END" else token.start_pos
    if token is not None and token.type == "WORD" and text[token.end_pos:token.end_pos + 1] == ".":
        return _lexical_message(text, token.start_pos)
    if token is not None:
        _check_token(token)
    expected = set(state.parse_conf.states[state.position].keys())
    if "IDENT" in expected:
        if build.count >= hand.MAX_CONDITIONS and (token is None or token.type != "LPAR"):
            return f"A filter holds at most {hand.MAX_CONDITIONS} conditions", pos
        if token is not None and token.type == "WORD" and str(token).lower() in hand.ATTRIBUTES:
            return f"Write attributes.{str(token).lower()} rather than '{token}'", pos
        return ("Expected an identifier such as metrics.acc, params.model, tags.team or attributes.status, "
                f"found {describe(token)}"), pos
    if kind == "IDENT":
        return ("Expected a comparator (=, !=, >, >=, <, <=, LIKE, ILIKE, IN, NOT IN) after "
                f"{previous}, found {describe(token)}"), pos
    if kind == "NOT":
        return f"Expected IN after NOT, found {describe(token)}", pos
    if kind == "IN":
        return f"Expected '(' to start the IN list, found {describe(token)}", pos
    if kind in ("OP", "LIKE", "ILIKE") or (kind in ("LPAR", "COMMA") and _in_list_open(stack)):
        ident, (kind, _, vtype) = build.ident, build.resolved
        if kind == "param" and build.op in (">", ">=", "<", "<="):
            return (f"{ident} {build.op} compares {ident} as a number, and {describe(token)} "
                    "is not a number"), pos
        if vtype in (hand.NUMBER, hand.TIME):
            return f"{ident} compares with a number, found {describe(token)}", pos
        return f"{ident} compares with a quoted string, found {describe(token)}", pos
    if isinstance(previous, _Literal) and _in_list_open(stack):
        return f"Expected ',' or ')' in the IN list, found {describe(token)}", pos
    opening = _open_paren(stack)
    if opening is not None:
        return (f"Expected AND, OR or ')' to close the '(' at position {opening.start_pos + 1}, "
                f"found {describe(token)}"), pos
    if token is not None and token.type == "RPAR":
        return "Unmatched ')'", pos
    return f"Expected AND, OR or the end of the filter, found {describe(token)}", pos


def _flat(items) -> list:
    """The parser's value stack with lark's helper trees (the `(COMMA value)*` repeats) opened."""
    out = []
    for item in items:
        if isinstance(item, Tree):
            out.extend(_flat(item.children))
        else:
            out.append(item)
    return out


def _in_list_open(stack) -> bool:
    for i in range(len(stack) - 1, 0, -1):
        if getattr(stack[i], "type", None) == "LPAR":
            return getattr(stack[i - 1], "type", None) == "IN"
    return False


def _open_paren(stack):
    closed = 0
    for item in reversed(stack):
        kind = getattr(item, "type", None)
        if kind == "RPAR":
            closed += 1
        elif kind == "LPAR":
            if not closed:
                return item
            closed -= 1
    return None


class _KeepWords:
    """Keeps the WORD terminal the grammar never uses, so a stray word is a token lark can name."""

    always_accept = ("WORD",)

    def process(self, stream):
        return stream


class LarkFilterParser:
    def __init__(self):
        self.build = Build()
        self.lark = Lark(GRAMMAR, parser="lalr", lexer="basic", transformer=self.build, postlex=_KeepWords())

    def parse(self, text):
        text = hand._check_text(text, "filter", hand.MAX_FILTER_LENGTH)
        interactive = self.lark.parse_interactive(text)
        self.build.state = interactive.parser_state
        self.build.reset()
        try:
            return interactive.resume_parse()
        except UnexpectedCharacters as error:
            fail(*_lexical_message(text, error.pos_in_stream))
        except UnexpectedToken as error:
            fail(*_syntax_message(self.build, error.token, text))
        except UnexpectedEOF:
            fail(*_syntax_message(self.build, None, text))


class PlainLarkFilterParser:
    """Lark as it is usually used: parse the whole text to a tree, then check it with a Transformer.
    Lark's own error text stands for syntax errors."""

    def __init__(self):
        self.lark = Lark(GRAMMAR, parser="lalr", lexer="basic", postlex=_KeepWords())

    def parse(self, text):
        text = hand._check_text(text, "filter", hand.MAX_FILTER_LENGTH)
        try:
            tree = self.lark.parse(text)
        except UnexpectedInput as error:
            hand.fail("filter", str(error).strip())
        try:
            return Build().transform(tree)
        except VisitError as error:
            raise error.orig_exc from None


def _outcome(parse, text):
    try:
        return "ok", parse(text)
    except ValidationError as error:
        return "error", error.message_dict["filter"][0]


def corpora():
    """Filters from the search tests: the word-for-word errors, the malformed and the accepted ones."""
    from tests.experiments import test_search, test_search_contract, test_search_parser_errors

    words = dict(test_search_parser_errors.FILTER_ERRORS)
    malformed = list(test_search.MALFORMED) + [
        "metrics.acc > 0.1; DROP TABLE experiments_run", "metrics.acc > 0.1 -- comment",
        "metrics.acc > (SELECT 1)", "metrics.`acc\" OR 1=1 --` > 0", "metrics.a = 1 and 5",
        "params.a IN ('x', 1) ;", "attributes.nope 'x'", "metrics.acc = 'x' )", "metrics.acc = 'x' ;",
        "params.x IN ('a',)", "params.x IN ('a', 'b' 'c')", "params.x IN ('a', 'b', 3)",
        "attributes.start_time = 1e300", "metrics.acc NOT IN (1)", "metrics.a = 1 and (",
        " and ".join(["metrics.a = 1"] * 100) + " and 5", "params.x LIKE 5 ;",
        "params.x IN (" + ", ".join(["'v'"] * 1001) + ")", "params.x IN (" + ", ".join(["'v'"] * 1001) + ";",
    ]
    accepted = [text for text, _ in test_search_contract.FILTERS] + [
        "metrics.acc > 0.9 and params.model = 'rf' AND tags.team = 'vision' "
        "And attributes.status = 'FINISHED'",
        "metrics.`val/loss` < 0.5", 'metrics."val/loss" > 0.5', "params.`my key` = 'Hello World'",
        r"params.note = 'it\'s'", "params.note = 'it''s'", "params.note = \"it's\"",
        r"params.code LIKE 'a\_b'", "params.x = \"a''b\"", "params.x = 'a\"\"b'",
        "metrics.`val/loss` <= -1.5e-3 and params.\"a b\" = 'x\\ny' and tags.t IN ('p', \"q\") "
        "and attributes.run_name ILIKE '%z' and metrics.m > +2",
        "params.model = 'rf' AND (params.depth = '3' OR params.model = 'svm')",
        "((params.model = 'gb') and (metrics.acc > 0.75 or params.C = '10'))",
        "params.C > '0.5'", "params.C > -1e30", "metrics.acc > .9", "metric.acc < 0.81", "run.end_time >= 0",
        "attr.end_time < 1700000000000", "parameters.lr != '0.1'", "tag.team IN ('nlp')", "  ", "",
        "params.model = 'rf'' OR ''1''=''1'", "params.`a b` = ''", 'tags.t = "say ""hi"""',
        "(params.model = 'rf' or tags.team = 'nlp') and metrics.acc > 0 "
        "or (params.m = 'x' and metrics.a < 1)",
    ]
    return words, malformed, accepted


_PIECES = [
    "metrics.acc", "params.C", "params.`a b`", "tags.team", "attributes.status", "attributes.start_time",
    "attributes.run_id", "attributes.nope", "metrics.``", "foo.x", "status", "acc", "metrics.", "params.\"q",
    "=", "!=", ">", ">=", "<", "<=", "==", "LIKE", "ilike", "IN", "NOT", "not in", "AND", "or", "ASC",
    "(", ")", ",", "1", "-2.5", "1e999", "12abc", "1.2.3", ".5", "+3", "1700000000000", "1.5",
    "'x'", "'0.5'", '"y"', "'it''s'", "'a\\_b'", "'unterminated", "'00000000-0000-0000-0000-000000000000'",
    "--", ";", "`k`", "NaN", "", " ", "''", "'\\", "metrics.a.b", "run.id", "\u00a0", "\t(", "-", "1e", "0x1",
    "metrics.`a/b`", "tags.\"t\"", "attr.end_time", "desc", "(((", ")))", "'%'", "and.x", "in(", "not(",
]


def random_filters(count: int, seed: int = 7) -> list[str]:
    """Token soup from the language's pieces, plus valid conditions joined and nested, for both parsers."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        if n % 2:
            out.append(" ".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 9))))
        else:
            ident = rng.choice(_PIECES[:8])
            out.append(f"{rng.choice(['', '('])}{ident} {rng.choice(_PIECES[14:28])} "
                       f"{rng.choice(['', '('])}{rng.choice(_PIECES[32:48])}{rng.choice(['', ')', ', 2)'])} "
                       f"{rng.choice(['', 'and', 'or', ')'])} {rng.choice(['', 'metrics.a > 1', ')'])}")
    return out


TYPICAL = "metrics.acc > 0.9 and params.model IN ('rf', 'gb') and attributes.status = 'FINISHED'"
LONG = " or ".join(f"(metrics.m{i} > {i}.5 and params.p{i} = 'v{i}' and tags.`t/{i}` LIKE 'x%')"
                   for i in range(33))


def _timings(parse) -> list[str]:
    timings = []
    for text, number in ((TYPICAL, 2000), (LONG, 50)):
        runs = timeit.repeat(lambda text=text: parse(text), number=number, repeat=5)
        timings.append(f"{min(runs) / number * 1e6:8.1f} us")
    return timings


def main():
    lark_parser = LarkFilterParser()
    parsers = [("hand-written", hand.parse_filter),
               ("lark LALR, checks at each shift, errors mapped", lark_parser.parse),
               ("lark LALR, checks after the parse, lark's errors", PlainLarkFilterParser().parse)]
    expected_words, malformed, accepted = corpora()
    words = list(expected_words)
    soup = random_filters(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    rows, differences = [], []
    bare = Lark(GRAMMAR, parser="lalr", lexer="basic", postlex=_KeepWords())
    for name, parse in parsers:
        same_words = sum(_outcome(parse, t) == ("error", expected_words[t]) for t in words)
        same_errors = sum(_outcome(parse, t) == _outcome(hand.parse_filter, t) for t in malformed)
        same_accepted = sum(_outcome(parse, t) == _outcome(hand.parse_filter, t) for t in accepted)
        same_soup = sum(_outcome(parse, t) == _outcome(hand.parse_filter, t) for t in soup)
        if parse is lark_parser.parse:
            for t in words + malformed + accepted + soup:
                mine, theirs = _outcome(parse, t), _outcome(hand.parse_filter, t)
                if mine != theirs:
                    differences.append((t, theirs, mine))
        for text in (TYPICAL, LONG):
            assert _outcome(parse, text) == _outcome(hand.parse_filter, text)
        rows.append((name, f"{same_words}/{len(words)}", f"{same_errors}/{len(malformed)}",
                     f"{same_accepted}/{len(accepted)}",
                     f"{same_soup}/{len(soup)}", *_timings(parse)))
    header = ("parser", "messages identical (word for word)", "other errors identical", "accepted identical",
              "random filters identical",
              f"typical ({len(TYPICAL)} chars)", f"long ({len(LONG)} chars)")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print("lark LALR building its bare parse tree alone (no checks, no conditions):",
          *_timings(bare.parse))
    if differences:
        print(f"\n{len(differences)} inputs where lark differs:")
        for text, theirs, mine in differences:
            print(f"  {text[:70]!r}\n    hand-written: {theirs[1] if theirs[0] == 'error' else theirs}"
                  f"\n    lark:         {mine[1] if mine[0] == 'error' else mine}")


if __name__ == "__main__":
    main()
