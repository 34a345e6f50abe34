"""The filter and sort-key errors a user reads, word for word, with the position they point at."""

import pytest
from django.core.exceptions import ValidationError

from experiments.search import parse_filter, parse_order_by

IDENTIFIER = "Expected an identifier such as metrics.acc, params.model, tags.team or attributes.status"

FILTER_ERRORS = [
    ("metrics.acc >", "metrics.acc compares with a number, found the end of the input (at position 14)"),
    ("acc > 1", f"{IDENTIFIER}, found 'acc' (at position 1)"),
    ("status = 'x'", "Write attributes.status rather than 'status' (at position 1)"),
    ("foo.acc > 1", "Unknown prefix 'foo': use metrics., params., tags. or attributes. (at position 1)"),
    ("metrics.acc = 1 or or", f"{IDENTIFIER}, found 'or' (at position 20)"),
    ("(metrics.acc = 1",
     "Expected AND, OR or ')' to close the '(' at position 1, found the end of the input (at position 17)"),
    ("metrics.acc = 1)", "Unmatched ')' (at position 16)"),
    ("params.model = 'rf", "Unterminated string (at position 16)"),
    ("metrics.acc LIKE 'x'",
     "LIKE is not valid for metrics.acc: use one of =, !=, >, >=, <, <= (at position 13)"),
    ("attributes.nope = 'x'",
     "Unknown attribute 'nope': use one of author, end_time, experiment, id, name, run_id, run_name, "
     "start_time, status (at position 1)"),
    ("attributes.start_time = 1.5",
     "attributes.start_time compares with whole milliseconds since the epoch (at position 25)"),
    ("attributes.run_id = 'zz'", "'zz' is not a run id (at position 21)"),
    ("params.C > 'abc'",
     "params.C > compares params.C as a number, and 'abc' is not a number (at position 12)"),
    ("params.a IN ('x', 1)", "The IN list of params.a mixes numbers and strings (at position 1)"),
    ("params.a NOT = 'x'", "Expected IN after NOT, found '=' (at position 14)"),
    ("params.a IN ('x' 'y')", "Expected ',' or ')' in the IN list, found 'y' (at position 18)"),
    ("metrics.acc = 12abc", "Malformed number '12a' (at position 15)"),
    ("metrics.acc = 1 -- hi", "Comments ('--') are not allowed (at position 17)"),
    ("metrics.acc = 1; drop", "Unexpected character ';' (at position 16)"),
    ("metrics.`` = 1", "Empty key (at position 9)"),
    ("(" * 25 + "metrics.a = 1" + ")" * 25, "Parentheses nest at most 20 deep (at position 21)"),
    (" and ".join(["metrics.a = 1"] * 101), "A filter holds at most 100 conditions (at position 1801)"),
    ("\x00", "Must not contain NUL characters."),
]


@pytest.mark.parametrize(("text", "message"), FILTER_ERRORS, ids=[t[:40] for t, _ in FILTER_ERRORS])
def test_filter_error_names_the_problem_and_its_position(text, message):
    with pytest.raises(ValidationError) as error:
        parse_filter(text)
    assert error.value.message_dict == {"filter": [message]}


ORDER_ERRORS = [
    (["metrics.acc UP"],
     "Item 1 ('metrics.acc UP'): Expected ASC, DESC or the end of the sort key, found 'UP' (at position 13)"),
    (["attributes.name", "acc"],
     "Item 2 ('acc'): Expected a sort key such as metrics.acc, params.model, tags.team or attributes.status, "
     "found 'acc' (at position 1)"),
    ([1], "Item 1 (''): Must be a string."),
    (["a"] * 11, "At most 10 sort keys."),
]


@pytest.mark.parametrize(("order_by", "message"), ORDER_ERRORS)
def test_order_by_error_names_the_item_and_its_position(order_by, message):
    with pytest.raises(ValidationError) as error:
        parse_order_by(order_by)
    assert error.value.message_dict == {"order_by": [message]}
