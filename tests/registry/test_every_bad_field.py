"""A refused prediction request names every bad column, not only the first one found."""

import pytest
from django.core.exceptions import ValidationError

from registry.signature import request_parse

COLUMNS = [{"name": "age", "dtype": "double"}, {"name": "income", "dtype": "double"},
           {"name": "city", "dtype": "string"}, {"name": "children", "dtype": "long"}]


def test_every_bad_column_is_named():
    body = {"records": [{"age": "old", "income": "lots", "city": "Oslo", "children": 1.5}]}
    with pytest.raises(ValidationError) as caught:
        request_parse(body, COLUMNS, max_rows=10)
    fields = caught.value.message_dict
    assert set(fields) == {"age", "income", "children"}
    assert "expected a number, got 'old'" in fields["age"][0]
    assert "expected an integer" in fields["children"][0]


def test_missing_and_bad_columns_are_named_together():
    body = {"records": [{"age": "old", "city": "Oslo", "children": 2}]}
    with pytest.raises(ValidationError) as caught:
        request_parse(body, COLUMNS, max_rows=10)
    fields = caught.value.message_dict
    assert fields["income"] == ["Row 0: missing column."]
    assert "expected a number" in fields["age"][0]


def test_good_records_still_parse():
    parsed = request_parse({"records": [{"age": 30, "income": 1.5, "city": "Oslo", "children": 2}]},
                           COLUMNS, max_rows=10)
    assert parsed.n_rows == 1 and parsed.frame()["city"].tolist() == ["Oslo"]
