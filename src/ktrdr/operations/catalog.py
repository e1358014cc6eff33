"""What market data and trained models the workers hold, as the backend knows them: from
the results of completed data_download and training operations (all data and every model
enter through them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ktrdr.db.tables import DataDeletionRow, OperationRow
from ktrdr.engine.errors import ModelNotFoundError
from ktrdr.engine.model_choice import (
    ModelSummary,
    choose_model,
    fit_problems,
    summary_from_metadata,
)
from ktrdr.engine.timeframes import did_you_mean
from ktrdr.jobs.backtest import BacktestParams
from ktrdr.jobs.specs import ParamsError
from ktrdr.operations.model import OperationStatus, OperationType
from ktrdr.operations.store import Store

# The catalog is built from the newest completed downloads (as many as the store's own
# completed_results reads by default).
CATALOG_SCAN_LIMIT = 1000


def datasets(store: Store) -> list[dict[str, Any]]:
    """The newest known state of every (symbol, timeframe), sorted; a series deleted
    after its newest download is left out (a later download brings it back)."""
    deleted = deletion_times(store)
    # The newest download of a series decides (rows come newest first); None: deleted.
    seen: dict[tuple[str, str], dict[str, Any] | None] = {}
    with store.session() as session:
        rows = session.execute(
            select(OperationRow.result, OperationRow.completed_at)
            .where(
                OperationRow.type == OperationType.DATA_DOWNLOAD.value,
                OperationRow.status == OperationStatus.COMPLETED.value,
            )
            .order_by(OperationRow.completed_at.desc())
            .limit(CATALOG_SCAN_LIMIT)
        ).all()
    for result, completed_at in rows:
        dataset = (result or {}).get("dataset")
        if not isinstance(dataset, dict):
            continue
        key = (str(dataset["symbol"]), str(dataset["timeframe"]))
        if key in seen:
            continue
        hidden = key in deleted and completed_at <= deleted[key]
        seen[key] = None if hidden else {**dataset, "gaps": result.get("gaps")}
    return [d for _, d in sorted(seen.items()) if d is not None]


def deletion_times(store: Store) -> dict[tuple[str, str], datetime]:
    """(symbol, timeframe) -> when it was last deleted."""
    with store.session() as session:
        rows = session.execute(
            select(
                DataDeletionRow.symbol, DataDeletionRow.timeframe,
                func.max(DataDeletionRow.deleted_at),
            ).group_by(DataDeletionRow.symbol, DataDeletionRow.timeframe)
        ).all()  # fmt: skip
    return {(symbol, timeframe): at for symbol, timeframe, at in rows}


# difflib similarity a stored symbol needs to be suggested for an unknown one (BBX/BBB is
# 0.67, DELME/CLIME 0.6).
SYMBOL_SIMILARITY = 0.65


def require_bars(
    store: Store, keys: list[tuple[str, str]], start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """The dataset of every (symbol, timeframe) a run reads (one, or a universe's), or one
    ParamsError naming each that is missing (with a did-you-mean against the catalog)."""
    catalog = datasets(store)
    found, problems = [], []
    for symbol, timeframe in keys:
        try:
            found.append(_require(catalog, symbol, timeframe, start, end))
        except ParamsError as exc:
            problems.append(str(exc))
    timeframe = keys[0][1] if keys else ""
    if len(keys) > 1 and len(problems) == len(keys):
        have = sorted({d["timeframe"] for d in catalog if d["symbol"] in dict(keys)})
        other = f" (they have {', '.join(have)})" if have else ""
        problems.insert(0, f"none of the {len(keys)} symbols has {timeframe} data{other}")
    if problems:
        raise ParamsError("; ".join(problems))
    return found


def _require(
    catalog: list[dict[str, Any]],
    symbol: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
) -> dict[str, Any]:
    found = next(
        (d for d in catalog if d["symbol"] == symbol and d["timeframe"] == timeframe), None
    )
    if found is None:
        download = (
            f"download it first with `ktrdr data download {symbol} --timeframe {timeframe}` "
            "(--provider synthetic for generated bars, yahoo for market data, "
            "or `ktrdr data import FILE.csv`)"
        )
        others = sorted(d["timeframe"] for d in catalog if d["symbol"] == symbol)
        if others:
            raise ParamsError(
                f"no data for {symbol} {timeframe} yet: the catalog has {symbol} "
                f"{', '.join(others)} only; choose one of those timeframes or {download}"
            )
        symbols = sorted({str(d["symbol"]) for d in catalog})
        # Tickers are short: only a near miss (EURUSX, BBX) is worth suggesting.
        hint = did_you_mean(symbol, symbols, cutoff=SYMBOL_SIMILARITY)
        raise ParamsError(f"no data for {symbol} {timeframe} yet{hint}: {download}")
    first = datetime.fromisoformat(found["first"])
    last = datetime.fromisoformat(found["last"])
    if (start and start > last) or (end and end < first):
        raise ParamsError(
            f"no {symbol} {timeframe} bars between {start or 'the beginning'} and "
            f"{end or 'the end'}: the stored data covers {first.isoformat()} to "
            f"{last.isoformat()}; choose dates inside it"
        )
    return found


def models(store: Store) -> list[ModelSummary]:
    """Every model version saved by a completed training run (runs from before the model
    record carried its features are left out: they cannot be checked)."""
    found = []
    for result in store.completed_results(OperationType.TRAINING, limit=5000):
        model = result.get("model")
        if isinstance(model, dict) and "feature_names" in model:
            found.append(summary_from_metadata(model))
    return found


def resolve_model(store: Store, params: dict[str, Any]) -> dict[str, Any]:
    """A model-driven backtest's parameters with the model it will use (``model``: name,
    version, training symbol/timeframe, date ranges) — or a ParamsError, before anything is
    queued, when there is no such model or it does not fit the run."""
    run = BacktestParams.model_validate(params)
    strategy = run.run_strategy()
    cfg = strategy.decisions.model
    if cfg is None:
        return params
    try:
        chosen = choose_model(
            models(store), strategy.model_name, cfg.version, "the completed training runs"
        )
    except ModelNotFoundError as exc:
        raise ParamsError(str(exc)) from None
    # Each symbol of a universe or portfolio must fit the model (repeats said once).
    problems = list(
        dict.fromkeys(
            p for s, _ in run.data_keys() for p in fit_problems(chosen, run.run_strategy(s))
        )
    )
    if problems:
        raise ParamsError("; ".join(problems))
    return {**params, "model": chosen.to_dict()}
