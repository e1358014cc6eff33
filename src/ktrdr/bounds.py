"""What the store can hold, as the constrained types every request model uses.

One copy of each limit: the column sizes (`ktrdr.db.tables` reads them from here), the
64-bit integers SQLite and PostgreSQL store, finite floats only (Python's JSON parser
takes `Infinity` and `NaN`, which no JSON encoder, column or worker takes back), and no
NUL characters in text (PostgreSQL refuses them in text columns). `RequestModel` applies
the last three to every field of every request model; each free-form string also has a
`max_length` where it is declared. Input outside these is a 422 naming the field instead
of a 500 from the database, or a crash later in a place that cannot answer the client.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator

INT64_MAX = 2**63 - 1
# The INTEGER columns (progress items, attempts) are 32-bit on PostgreSQL.
INT32_MAX = 2**31 - 1

# Column sizes.
OPERATION_ID_MAX = 64
WORKER_ID_MAX = 200
WORKER_URL_MAX = 500
VERSION_MAX = 32
PHASE_MAX = 64
IDEMPOTENCY_KEY_MAX = 200

# Free-form text the API stores or passes on (characters).
LABEL_MAX = 200
MESSAGE_MAX = 2_000
ERROR_MAX = 20_000
STRATEGY_TEXT_MAX = 200_000
# A CSV import travels as text in the request: 50 M characters is ~1 M daily bars with
# room to spare, and sets the default body limit (`KTRDR_MAX_BODY_BYTES`).
CSV_TEXT_MAX = 50_000_000
# Nesting of a JSON value (results, parameters): far beyond any result we build.
JSON_DEPTH_MAX = 64

_WORKER_ID_CHARS = re.compile(r"[A-Za-z0-9_.:@-]+")


def _printable_id(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("ids have no control characters (NUL, newline, …)")
    return value


def _worker_id(value: str) -> str:
    if not _WORKER_ID_CHARS.fullmatch(value):
        raise ValueError("worker ids use only letters, digits and _ . : @ -")
    return value


OperationId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=OPERATION_ID_MAX),
    AfterValidator(_printable_id),
]
WorkerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=WORKER_ID_MAX),
    AfterValidator(_worker_id),
]


def _utc(value: datetime) -> datetime:
    # Naive means UTC (as documented): comparing naive with aware times would raise.
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]


def json_problem(value: Any, where: str = "", depth: int = 0) -> str | None:
    """What a JSON column or encoder cannot take in `value`, with where, or None."""
    # Most values are fine: checked first without naming every place (a sweep chunk's
    # report holds ~8,000 numbers, and the named walk cost ~5 ms of the backend's CPU).
    if _fits_store(value, depth):
        return None
    return _named_problem(value, where, depth)


def _fits_store(value: Any, depth: int) -> bool:
    """``_named_problem`` finds nothing (the same rules, without the names)."""
    if depth > JSON_DEPTH_MAX:
        return False
    if isinstance(value, dict):
        return all(
            "\x00" not in str(key) and _fits_store(item, depth + 1) for key, item in value.items()
        )
    if isinstance(value, list):
        if all(type(item) is float for item in value):  # block returns and the like
            return not value or (depth < JSON_DEPTH_MAX and all(map(math.isfinite, value)))
        return all(_fits_store(item, depth + 1) for item in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= INT64_MAX
    if isinstance(value, str):
        return "\x00" not in value
    return True


def _named_problem(value: Any, where: str, depth: int) -> str | None:
    here = where or "value"
    if depth > JSON_DEPTH_MAX:
        return f"{here}: nested deeper than {JSON_DEPTH_MAX} levels"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{here}: numbers must be finite (no Infinity or NaN)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64_MAX:
        return f"{here}: integers must fit in 64 bits (at most {INT64_MAX})"
    if isinstance(value, str) and "\x00" in value:
        return f"{here}: must not contain NUL (\\x00) characters"
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                return f"{here}: keys must not contain NUL (\\x00) characters"
            items.append((str(key), item))
    elif isinstance(value, list):
        items = [(str(index), item) for index, item in enumerate(value)]
    for key, item in items:
        problem = _named_problem(item, f"{where}.{key}" if where else key, depth + 1)
        if problem:
            return problem
    return None


class RequestModel(BaseModel):
    """Base of every request body and job parameter model: unknown fields are refused,
    and every value - nested dicts and lists too - must be one the store can hold."""

    # allow_inf_nan: float fields say "finite number" before any range check does.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # After each field's own checks, so their messages come first.
        problem = json_problem(value)
        if problem:
            raise ValueError(problem.removeprefix("value: "))
        return value
