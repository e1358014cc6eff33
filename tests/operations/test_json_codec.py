"""The store's JSON codec (orjson with the standard library behind it)."""

from __future__ import annotations

import json
import math

import numpy as np

from ktrdr import json_codec


def test_values_round_trip_like_the_standard_library() -> None:
    value = {"a": [1, 2.5, None, True, "é\u2028"], "nested": {"x": -0.0, "y": 1e-300}}
    assert json_codec.loads(json_codec.dumps(value)) == json.loads(json.dumps(value))


def test_non_string_keys_become_strings_as_json_dumps_makes_them() -> None:
    assert json_codec.loads(json_codec.dumps({1: "a", 2.5: "b"})) == {"1": "a", "2.5": "b"}


def test_nan_and_infinities_are_written_as_null_as_postgresql_requires() -> None:
    text = json_codec.dumps({"n": math.nan, "i": math.inf, "m": -math.inf})
    assert json.loads(text) == {"n": None, "i": None, "m": None}


def test_what_orjson_refuses_goes_through_the_standard_library() -> None:
    big = {"big": 2**70, "np": np.float64(1.25)}
    assert json_codec.dumps(big) == json.dumps(big)


def test_rows_written_by_json_dumps_with_nan_tokens_still_read() -> None:
    loaded = json_codec.loads('{"a": NaN, "b": Infinity}')
    assert math.isnan(loaded["a"]) and loaded["b"] == math.inf
    assert json_codec.loads(b'{"a": 1}') == {"a": 1}
