"""What market data the workers hold, as the backend knows it: from the results of
completed data_download operations (all data enters through them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ktrdr.jobs.specs import ParamsError
from ktrdr.operations.model import OperationType
from ktrdr.operations.store import Store


def datasets(store: Store) -> list[dict[str, Any]]:
    """The newest known state of every (symbol, timeframe), sorted."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for result in store.completed_results(OperationType.DATA_DOWNLOAD):
        dataset = result.get("dataset")
        if isinstance(dataset, dict):
            key = (str(dataset["symbol"]), str(dataset["timeframe"]))
            seen.setdefault(key, {**dataset, "gaps": result.get("gaps")})
    return [seen[k] for k in sorted(seen)]


def require_bars(
    store: Store, symbol: str, timeframe: str, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    """The dataset for a backtest, or a ParamsError that says how to get it."""
    found = next(
        (d for d in datasets(store) if d["symbol"] == symbol and d["timeframe"] == timeframe),
        None,
    )
    if found is None:
        raise ParamsError(
            f"no data for {symbol} {timeframe} yet: download it first with "
            f"`ktrdr data download {symbol} --timeframe {timeframe}` "
            "(--provider synthetic for generated bars, yahoo for market data, "
            "or `ktrdr data import FILE.csv`)"
        )
    first = datetime.fromisoformat(found["first"])
    last = datetime.fromisoformat(found["last"])
    if (start and start > last) or (end and end < first):
        raise ParamsError(
            f"no {symbol} {timeframe} bars between {start or 'the beginning'} and "
            f"{end or 'the end'}: the stored data covers {first.isoformat()} to "
            f"{last.isoformat()}; choose dates inside it"
        )
    return found
