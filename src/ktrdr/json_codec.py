"""JSON for the store's JSON columns and the worker's final report: orjson, falling back
to the standard library for what orjson refuses.

A sweep chunk's result (50 combinations with their statistics and 128 block returns
each, about 180 KB) is encoded and decoded about four times in the store on its way from the
worker's report to the campaign's results table: with ``json`` 3.8 ms per encoding and
1.8 per decoding of the backend's CPU, with orjson 0.2 and 0.3.

Differences from ``json.dumps``, both deliberate: NaN and infinities become ``null``
(PostgreSQL's JSON refuses the ``NaN`` token ``json`` writes, so a store on SQLite now
holds what one on PostgreSQL would), and the text is compact. Integers past 64 bits,
float subclasses such as ``numpy.float64`` and anything else orjson does not encode go
through ``json.dumps``, with its behaviour and errors.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: ...} -> {"1": ...}, as json.dumps does


def dumps(value: Any) -> str:
    """``value`` as JSON text."""
    return dumps_bytes(value).decode()


def dumps_bytes(value: Any) -> bytes:
    """``value`` as UTF-8 JSON (an HTTP body without a round trip through ``str``)."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value).encode()


def loads(text: str | bytes) -> Any:
    """JSON text as Python values; also the ``NaN`` and ``Infinity`` tokens that rows
    written by ``json.dumps`` before this codec may hold."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
