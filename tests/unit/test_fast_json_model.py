"""Google's answers decode to exactly what json gave, whichever decoder ran."""

from __future__ import annotations

import json

import pytest
from googleapiclient.model import JsonModel

from monolyth_pipelines.google.clients import FastJsonModel


@pytest.mark.parametrize(
    "body",
    [
        b'{"files": [{"id": "a", "size": "12"}], "nextPageToken": "t"}',
        # orjson would read these as floats: json keeps them exact.
        b'{"threadId": -18446743901910859776, "historyId": 18446744073709551616}',
        b'{"name": "\\ud800 lone surrogate"}',  # orjson refuses it
        b'{"size": NaN}',  # not JSON; json reads it
        b"<html>502 Bad Gateway</html>",  # not JSON at all: handed on as text
        '{"name": "caf\u00e9"}'.encode(),
    ],
)
def test_the_fast_model_decodes_as_the_library_model(body: bytes) -> None:
    fast, reference = FastJsonModel().deserialize(body), JsonModel().deserialize(body)
    assert json.dumps(fast, sort_keys=True) == json.dumps(reference, sort_keys=True)
