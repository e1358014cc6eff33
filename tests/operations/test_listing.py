"""Listings carry summaries only: bounded size whatever the operations hold (SQLite and
PostgreSQL), and the migration that summarises existing rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from ktrdr.db.engine import MIGRATIONS_DIR, make_engine, upgrade_schema
from ktrdr.operations.model import OperationStatus, OperationType
from ktrdr.operations.schemas import OperationsPublic
from ktrdr.operations.store import Store
from ktrdr.operations.summary import MAX_SUMMARY_BYTES, summarise_params, summarise_result

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
BIG_STRATEGY = "name: heavy_one  # a strategy file\ndata: {symbol: EURUSD, timeframe: 1h}\n" + (
    "# padding line of a long strategy file\n" * 1_000
)
STATS = {"total_return_pct": 12.5, "sharpe_ratio": 1.25, "max_drawdown_pct": -3.0,
         "num_trades": 2_000, "win_rate_pct": 51.0, "final_equity": 112_500.0,
         "sortino_ratio": 2.0, "bars": 100_000}  # fmt: skip


def big_result() -> dict:
    trade = {"entry_time": "2020-01-06T00:00:00+00:00", "side": "long", "net_pnl": 1.5}
    return {
        "strategy_name": "heavy_one",
        "symbol": "EURUSD",
        "statistics": STATS,
        "trades": [trade] * 500,
        "notes": "x" * 5_000,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'ktrdr.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    engine = make_engine(url)
    upgrade_schema(engine)
    yield Store(engine)
    engine.dispose()


def test_listing_of_heavy_operations_is_summaries_under_100_kb(store: Store) -> None:
    params = {"strategy": BIG_STRATEGY, "symbol": "EURUSD", "timeframe": "1h",
              "start": "2020-02-01T00:00:00+00:00", "end": None, "capital": 50_000.0}  # fmt: skip
    ids = []
    store.register_worker(worker_id="w", kinds=["backtesting"], url="http://w", version="t",
                          now=NOW)  # fmt: skip
    for i in range(50):
        op, _ = store.create_operation(
            op_type=OperationType.BACKTESTING, params=params, params_hash=f"h{i}",
            max_attempts=1, now=NOW + timedelta(seconds=i),
        )  # fmt: skip
        assert store.claim(op.id, "w", NOW) is not None
        failed = i % 10 == 0
        store.transition(
            op.id, OperationStatus.FAILED if failed else OperationStatus.COMPLETED, now=NOW,
            result=None if failed else big_result(), error="boom " * 4_000 if failed else None,
        )  # fmt: skip
        ids.append(op.id)

    items, total = store.list_operations(limit=50)
    page = OperationsPublic(data=items, count=total, limit=50, offset=0).model_dump_json()
    assert total == 50 and [o.id for o in items] == ids[::-1]
    assert len(page.encode()) < 100_000, len(page)
    listed = json.loads(page)["data"]
    newest, failed = listed[0], listed[-1]
    assert "params" not in newest and "result" not in newest
    assert newest["params_summary"] == {
        "strategy": "heavy_one", "symbol": "EURUSD", "timeframe": "1h",
        "start": "2020-02-01T00:00:00+00:00", "capital": 50_000.0,
    }  # fmt: skip
    assert newest["result_summary"] == {
        "strategy_name": "heavy_one",
        "symbol": "EURUSD",
        "statistics": {k: STATS[k] for k in list(STATS)[:6]},
        "notes": "x" * 79 + "…",
    }
    assert failed["result_summary"] is None and failed["error"] == ("boom " * 40)[:200]
    full = store.get_operation(ids[-1])
    assert full.params["strategy"] == BIG_STRATEGY and len(full.result["trades"]) == 500


def test_summaries_are_bounded_whatever_the_input() -> None:
    many = {f"key_{i}": "v" * 70 for i in range(200)}
    assert len(json.dumps(summarise_params(many))) <= MAX_SUMMARY_BYTES
    assert len(json.dumps(summarise_result(many))) <= MAX_SUMMARY_BYTES
    assert summarise_params({"strategy": "sma_crossover", "steps": [1, 2]}) == {
        "strategy": "sma_crossover"
    }
    assert summarise_params({"strategy": "data: {}\nindicators: []\n"}) == {
        "strategy": "(pasted YAML)"
    }


def test_migration_summarises_existing_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text(
                "INSERT INTO operations (id, type, status, params, params_hash, attempt, "
                "max_attempts, created_at, queued_at, pending_since, updated_at, "
                "progress_percent, result) VALUES ('op_old', 'backtesting', 'completed', "
                ":params, 'h', 1, 1, :t, :t, :t, :t, 100, :result)"
            ),
            {
                "params": json.dumps({"strategy": BIG_STRATEGY, "symbol": "EURUSD"}),
                "result": json.dumps(big_result()),
                "t": "2026-11-25 12:00:00",
            },
        )
    upgrade_schema(engine)
    [item], _ = Store(engine).list_operations()
    assert item.params_summary == {"strategy": "heavy_one", "symbol": "EURUSD"}
    assert item.result_summary is not None
    assert item.result_summary["statistics"]["num_trades"] == 2_000
    # 0009 gave the old row its filter keys.
    store = Store(engine)
    assert [o.id for o in store.list_operations(symbol="eurusd")[0]] == ["op_old"]
    assert [o.id for o in store.list_operations(strategy="heavy_one")[0]] == ["op_old"]
    assert store.list_operations(strategy="heavy")[1] == 0
    engine.dispose()


def test_symbol_and_strategy_filters_use_the_keys_set_at_creation(store: Store) -> None:
    pasted = "name: 'my_cross'  # mine\ndata: {symbol: GBPUSD, timeframe: 1h}\n"
    made = {}
    for label, params in {
        "example": {"strategy": "sma_crossover", "symbol": "eurusd"},
        "pasted": {"strategy": pasted, "symbol": "GBPUSD"},
        "big": {"strategy": BIG_STRATEGY, "symbol": "EURUSD"},
        "no_symbol": {"strategy": "sma_crossover"},
        "download": {"symbol": "EURUSD", "provider": "synthetic"},
    }.items():
        op, _ = store.create_operation(
            op_type=OperationType.BACKTESTING, params=params, params_hash=label,
            max_attempts=1, now=NOW + timedelta(seconds=len(made)),
        )  # fmt: skip
        made[label] = op.id

    def ids(**filters: str) -> set[str]:
        found, total = store.list_operations(**filters)  # type: ignore[arg-type]
        assert total == len(found)
        return {o.id for o in found}

    assert ids(symbol="EURUSD") == {made["example"], made["big"], made["download"]}
    assert ids(symbol=" gbpusd ") == {made["pasted"]}
    assert ids(strategy="sma_crossover") == {made["example"], made["no_symbol"]}
    assert ids(strategy="my_cross") == {made["pasted"]}
    assert ids(strategy="heavy_one", symbol="EURUSD") == {made["big"]}
    assert ids(strategy="sma_cross") == set()
    assert ids(strategy="%") == set(), "no LIKE wildcards: a name is matched exactly"


def test_top_level_leaves_out_campaign_chunks(store: Store) -> None:
    def create(op_type: OperationType, key: str, parent_id: str | None = None) -> str:
        op, _ = store.create_operation(
            op_type=op_type, params={"strategy": "sma_crossover"}, params_hash=key,
            max_attempts=1, now=NOW, parent_id=parent_id,
        )  # fmt: skip
        return op.id

    sweep = create(OperationType.SWEEP, "sweep")
    chunks = {create(OperationType.SWEEP_CHUNK, f"chunk{i}", parent_id=sweep) for i in range(3)}
    backtest = create(OperationType.BACKTESTING, "backtest")

    def ids(**filters: object) -> set[str]:
        found, total = store.list_operations(**filters)  # type: ignore[arg-type]
        assert total == len(found)
        return {o.id for o in found}

    assert ids() == {sweep, backtest, *chunks}
    assert ids(top_level=True) == {sweep, backtest}
    assert ids(parent_id=sweep) == chunks
