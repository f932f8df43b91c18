"""Google's answers decode to exactly what the client library's json gave, whichever decoder ran."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from googleapiclient.model import JsonModel
from hypothesis import given, settings
from hypothesis import strategies as st

from monolyth_pipelines.google.json_model import FastJsonModel


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 == 1.0 == True would hide a float)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@pytest.mark.parametrize(
    "body",
    [
        b'{"files": [{"id": "a", "size": "12"}], "nextPageToken": "t"}',
        # orjson would read these as floats: json keeps them exact.
        b'{"threadId": -18446743901910859776, "historyId": 18446744073709551616}',
        b'{"n": -9999999999999999999}',  # 19 digits, below int64
        b'{"n": 123456789012345678, "m": -123456789012345678}',  # 18 digits: orjson, exact
        b'{"name": "\\ud800 lone surrogate"}',  # orjson refuses it
        b'{"size": NaN, "big": 1e400}',  # not JSON; json reads them
        b'{"a": 1, "a": 2}',  # the last of a repeated key wins in both
        b"<html>502 Bad Gateway</html>",  # not JSON at all: handed on as text
        '{"name": "caf\u00e9 \U0001f600"}'.encode(),
        b"",
    ],
)
def test_the_fast_model_decodes_as_the_library_model(body: bytes) -> None:
    assert same(FastJsonModel().deserialize(body), JsonModel().deserialize(body))
    text = body.decode()
    assert same(FastJsonModel().deserialize(text), JsonModel().deserialize(text))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_decodes_the_same(value: Any) -> None:
    for body in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode()):
        assert same(FastJsonModel().deserialize(body), JsonModel().deserialize(body))
