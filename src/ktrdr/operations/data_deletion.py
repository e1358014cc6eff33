"""Deleting a stored series: the catalog's record and the bar file change together.

The bar file is first moved aside (an atomic rename to a parking name carrying a token),
then the deletion is committed to the catalog, then the parked file is removed. A failed
commit moves the file back; a crash in between leaves a parked file that `recover`
settles at the next start: its token committed → remove it, else → put it back. So the
catalog never lists a series whose bars are gone, nor hides one whose bars remain.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ktrdr.db.tables import DataDeletionRow, OperationRow
from ktrdr.engine.data.store import DataStore, normalize_symbol
from ktrdr.engine.timeframes import check_timeframe, did_you_mean
from ktrdr.jobs.specs import ParamsError
from ktrdr.operations.catalog import datasets
from ktrdr.operations.model import OperationStatus
from ktrdr.operations.store import Store

log = logging.getLogger(__name__)

_PARKED_MARK = ".deleting-"
_LIVE = (OperationStatus.PENDING.value, OperationStatus.RUNNING.value)


class DatasetNotFound(LookupError):
    """No such series in the catalog; the message says what is stored."""


class DataInUse(Exception):
    """A queued or running operation reads (or writes) the series."""


class DataDeleted(BaseModel):
    symbol: str
    timeframe: str
    rows: int = Field(description="bars the series had")
    deleted_at: datetime
    bars_removed: bool = Field(
        description="false: the catalog listed the series but its bar file was already gone"
    )


@dataclass(frozen=True)
class _Target:
    symbol: str
    timeframe: str
    path: Path


def _target(data_root: Path, symbol: str, timeframe: str) -> _Target:
    try:
        sym = normalize_symbol(symbol)
        check_timeframe(timeframe)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None
    return _Target(sym, timeframe, DataStore(data_root).path(sym, timeframe))


def _parked(path: Path, token: str) -> Path:
    # Not `*.parquet`: the store's listing never sees a parked file.
    return path.with_name(f".{path.name}{_PARKED_MARK}{token}")


def _not_found(store: Store, target: _Target) -> DatasetNotFound:
    stored = datasets(store)
    same_symbol = sorted(d["timeframe"] for d in stored if d["symbol"] == target.symbol)
    if same_symbol:
        hint = f"; {target.symbol} is stored for {', '.join(same_symbol)}"
    else:
        hint = did_you_mean(target.symbol, sorted({d["symbol"] for d in stored}))
    return DatasetNotFound(
        f"no data for {target.symbol} {target.timeframe} in the catalog{hint}; "
        "`ktrdr data list` shows every stored series"
    )


def _users(session: Session, target: _Target) -> list[str]:
    """Queued or running operations on the series (backtests, training, campaigns and
    their chunks, downloads into it): ids with type and status."""
    # Stored parameters are validated, so their symbols are already upper case. A run over
    # several symbols lists them in `symbols`: the few live operations on the timeframe
    # are read and matched here (a JSON-array test differs between the databases).
    rows = session.execute(
        select(OperationRow.id, OperationRow.type, OperationRow.status, OperationRow.params)
        .where(
            OperationRow.status.in_(_LIVE),
            OperationRow.params["timeframe"].as_string() == target.timeframe,
        )
        .order_by(OperationRow.created_at)
    ).all()
    return [
        f"{op_id} ({status} {op_type})"
        for op_id, op_type, status, params in rows
        if params.get("symbol") == target.symbol or target.symbol in (params.get("symbols") or [])
    ]


def delete_dataset(
    store: Store, data_root: Path, symbol: str, timeframe: str, now: datetime
) -> DataDeleted:
    """Remove a series from the catalog and its bars from the data store, together."""
    target = _target(data_root, symbol, timeframe)
    found = next(
        (
            d
            for d in datasets(store)
            if d["symbol"] == target.symbol and d["timeframe"] == target.timeframe
        ),
        None,
    )
    if found is None:
        raise _not_found(store, target)
    token = secrets.token_hex(8)
    parked = _parked(target.path, token)
    moved = False
    try:
        with store.session() as session, session.begin():
            users = _users(session, target)
            if users:
                more = f" and {len(users) - 5} more" if len(users) > 5 else ""
                shown = ", ".join(users[:5]) + more
                raise DataInUse(
                    f"{target.symbol} {target.timeframe} is in use by {shown}; wait for them "
                    "to finish or cancel them (`ktrdr ops cancel ID`), then delete again"
                )
            session.add(
                DataDeletionRow(
                    symbol=target.symbol, timeframe=target.timeframe, deleted_at=now,
                    token=token, rows=int(found.get("rows") or 0),
                )
            )  # fmt: skip
            session.flush()  # the insert must succeed before the file moves
            if target.path.is_file():
                os.replace(target.path, parked)
                moved = True
    except BaseException:
        if moved:
            os.replace(parked, target.path)
        raise
    parked.unlink(missing_ok=True)
    log.info("deleted %s %s (%s bars)", target.symbol, target.timeframe, found.get("rows"))
    return DataDeleted(
        symbol=target.symbol, timeframe=target.timeframe, rows=int(found.get("rows") or 0),
        deleted_at=now, bars_removed=moved,
    )  # fmt: skip


def recover(store: Store, data_root: Path) -> list[str]:
    """Settle deletions a crash interrupted (see the module's docstring); returns what
    was done, one line per parked file."""
    done = []
    for parked in data_root.glob(f"*/.*{_PARKED_MARK}*") if data_root.is_dir() else []:
        name, _, token = parked.name.partition(_PARKED_MARK)
        with store.session() as session:
            committed = session.scalar(
                select(DataDeletionRow.id).where(DataDeletionRow.token == token)
            )
        if committed is not None:
            parked.unlink(missing_ok=True)
            done.append(f"removed {parked}")
        else:
            os.replace(parked, parked.with_name(name.removeprefix(".")))
            done.append(f"restored {parked}")
    for line in done:
        log.warning("interrupted data deletion: %s", line)
    return done
