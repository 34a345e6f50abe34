"""The server's key and value rules (core.validation) and the SDK's copy (steward.keys) agree.

The SDK imports nothing of the server, so it keeps its own copy; a key the SDK accepts must be
one the server stores, and a value must be stored as the text the SDK computed.
"""

import math

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from steward import keys as sdk
from steward.errors import InvalidInputError

from core import validation as server

KEYS = ["loss", "val/acc", "a b:c", "x" * 250, "x" * 251, "", "/abs", "a/../b", "..", "a/..",
        "loss\n", "naïve", "a\x00b", "tab\tkey", "ok-key_1.2", "a//b", "a/./b"]
VALUES = [0.1, 1, -3, True, False, None, "text", "", np.float64(1.0), np.int64(3), np.float32(0.5),
          [np.int64(1), 2.5], (1, 2), {"a": np.float64(2.0)}, 1e300, math.inf, math.nan, 10 ** 30]


def test_the_limits_and_the_key_pattern_are_the_same():
    assert server.KEY_RE.pattern == sdk.KEY_RE.pattern
    assert (server.KEY_MAX_LENGTH, server.PARAM_VALUE_MAX_LENGTH, server.TAG_VALUE_MAX_LENGTH) == (
        sdk.KEY_MAX, sdk.PARAM_VALUE_MAX, sdk.TAG_VALUE_MAX)


@pytest.mark.parametrize("key", KEYS)
def test_a_key_is_accepted_by_both_or_by_neither(key):
    def accepted(check, error):
        try:
            check(key)
        except error:
            return False
        return True

    assert accepted(lambda k: server.key_check(k, "key"), ValidationError) == accepted(sdk.key_check,
                                                                                         InvalidInputError)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_has_the_same_text_on_both_sides(value):
    assert server.param_text(value) == sdk.param_text(value)
