"""Universe and portfolio backtests as operations on real processes (API + worker),
checked against the engine run directly on the same stored bars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import DataStore
from ktrdr.engine.portfolio import run_portfolio, run_universe, symbol_strategy
from ktrdr.engine.strategy import Strategy, load_strategy
from ktrdr.local_stack import LocalStack
from tests.support.stack import Api, StackFactory

SYMBOLS = ["AAA", "BBB", "CCC"]
DAILY_ONLY = "DDD"
THREADS = 3
WINDOW = {"start": "2020-01-20T00:00:00+00:00", "end": "2020-04-20T00:00:00+00:00"}
CAPITAL = 30_000.0

Stack = tuple[LocalStack, Api]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    factory = StackFactory(tmp_path_factory.mktemp("universe"))
    local, api = factory.start(workers=1, env={"KTRDR_BACKTEST_THREADS": str(THREADS)})
    downloads = [(s, "1h", 3000, seed) for seed, s in enumerate(SYMBOLS, start=11)]
    downloads.append((DAILY_ONLY, "1d", 300, 5))
    for symbol, timeframe, bars, seed in downloads:
        body = {"symbol": symbol, "timeframe": timeframe, "provider": "synthetic",
                "bars": bars, "seed": seed}  # fmt: skip
        response = api.http.post("/data/downloads/start", json=body)
        assert response.status_code == 202, response.text
        done = api.wait_status(response.json()["id"], {"completed", "failed"}, 30)
        assert done["status"] == "completed", done["error"]
    yield local, api
    factory.stop_all()


def _strategy(name: str = "sma_crossover") -> Strategy:
    strategy = load_strategy(name)
    data = strategy.data.model_copy(update={"timeframe": "1h"})
    return strategy.model_copy(update={"data": data})


def _bars(local: LocalStack, strategy: Strategy) -> dict[str, pd.DataFrame]:
    store = DataStore(local.data_home / "data")
    return {
        s: store.load(s, "1h", WINDOW["start"], WINDOW["end"], warmup_bars=strategy.warmup_bars())
        for s in SYMBOLS
    }


def _run(api: Api, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    response = api.http.post("/backtests/start", json=body)
    assert response.status_code == 202, response.text
    op = api.wait_status(response.json()["id"], {"completed", "failed"}, 90)
    assert op["status"] == "completed", op["error"]
    return op, api.http.get(f"/operations/{op['id']}/results").json()


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_universe_is_one_operation_equal_to_each_symbol_run_on_its_share(stack: Stack) -> None:
    local, api = stack
    body = {"strategy": "sma_crossover", "symbols": [s.lower() for s in SYMBOLS],
            "timeframe": "1h", "capital": CAPITAL, **WINDOW}  # fmt: skip
    op, stored = _run(api, body)
    strategy = _strategy()
    bars = _bars(local, strategy)
    share = CAPITAL / len(SYMBOLS)
    singles = {
        s: run_backtest(symbol_strategy(strategy, s), b, capital=share, **WINDOW)
        for s, b in bars.items()
    }
    expected_rows = [{"symbol": s, **r.statistics.to_dict()} for s, r in singles.items()]
    assert stored["per_symbol"] == _json(expected_rows)
    book = run_universe(strategy, bars, capital=CAPITAL, **WINDOW)
    assert stored["statistics"] == _json(book.statistics.to_dict())
    assert stored["statistics"]["num_trades"] == sum(len(r.trades) for r in singles.values())
    assert (stored["kind"], stored["symbols"], stored["symbol"]) == (
        "universe", SYMBOLS, "AAA,BBB,CCC"
    )  # fmt: skip
    assert stored["threads"] == THREADS, "the symbols ran in the worker's pool"
    # Every symbol's trades, tagged; the book's equity at every bar.
    trades = api.http.get(f"/operations/{op['id']}/results/trades").json()
    assert [t["symbol"] for t in trades] == [s for s, r in singles.items() for _ in r.trades]
    assert [t["net_pnl"] for t in trades] == _json(
        [t.net_pnl for r in singles.values() for t in r.trades]
    )
    equity = api.http.get(f"/operations/{op['id']}/results/equity").json()
    assert [p["equity"] for p in equity] == _json(book.equity_curve.tolist())
    # Lean record: references, not tables; the listing's summary is a line.
    assert set(op["result"]["artifacts"]) == {"per_symbol", "trades", "equity_curve"}
    assert "per_symbol" not in op["result"] and "trades" not in op["result"]
    listing = api.http.get("/operations", params={"type": "backtesting", "limit": 5}).json()
    row = next(o for o in listing["data"] if o["id"] == op["id"])
    assert row["params_summary"]["symbols"] == "AAA,BBB,CCC"
    assert row["result_summary"]["symbol"] == "AAA,BBB,CCC"
    assert row["result_summary"]["statistics"]["final_equity"] == pytest.approx(
        book.statistics.final_equity, rel=1e-12
    )
    # The console's report lists each symbol with the figures the record holds.
    page = httpx.get(f"{local.api_url}/operations/{op['id']}", timeout=30).text
    table = page[page.index('id="per-symbol"') :]
    table = table[: table.index("</table>")]
    for expected in stored["per_symbol"]:
        line = table[table.index(f'data-symbol="{expected["symbol"]}"') :]
        line = line[: line.index("</tr>")]
        assert f'<td class="num">{expected["total_return_pct"]:.2f}%</td>' in line
        assert f'<td class="num">{expected["num_trades"]:,}</td>' in line
        assert f'<td class="num">{expected["final_equity"]:,.2f}</td>' in line
    assert table.count("data-symbol=") == len(SYMBOLS)


def test_portfolio_shares_cash_and_matches_the_engine(stack: Stack) -> None:
    local, api = stack
    weights = {"AAA": 0.5, "BBB": 0.3, "CCC": 0.2}
    body = {"strategy": "sma_crossover", "symbols": SYMBOLS, "timeframe": "1h",
            "capital": CAPITAL, "portfolio": {"weights": weights, "rebalance": "weekly"},
            **WINDOW}  # fmt: skip
    op, stored = _run(api, body)
    strategy = _strategy()
    bars = _bars(local, strategy)
    book = run_portfolio(strategy, bars, weights=weights, rebalance="weekly", capital=CAPITAL,
                         **WINDOW)  # fmt: skip
    assert stored["statistics"] == _json(book.statistics.to_dict())
    assert stored["per_symbol"] == _json(book.per_symbol())
    assert stored["portfolio"] == {"weights": weights, "rebalance": "weekly",
                                   "every_bars": None, "rebalances": book.rebalances}  # fmt: skip
    # Weekly rebalances come on top of the side changes: more than an on-signal book has.
    on_signal = run_portfolio(strategy, bars, weights=weights, capital=CAPITAL, **WINDOW)
    assert book.rebalances > on_signal.rebalances
    # Each symbol's P&L (fills' cash flows + final position) adds up to the book's.
    pnl = sum(r["pnl"] for r in stored["per_symbol"])
    final = stored["statistics"]["final_equity"]
    assert pnl == pytest.approx(final - CAPITAL, rel=1e-9)
    # Equity = cash + positions at every bar's close, and cash never below zero.
    curve = pd.DataFrame(api.http.get(f"/operations/{op['id']}/results/equity").json())
    units = pd.DataFrame(api.http.get(f"/operations/{op['id']}/results/positions").json())
    assert len(curve) == len(units) == stored["statistics"]["bars"]
    index = pd.DatetimeIndex(pd.to_datetime(curve["timestamp"]))
    closes = np.column_stack([bars[s]["close"].reindex(index).to_numpy() for s in SYMBOLS])
    held = (units[SYMBOLS].to_numpy() * closes).sum(axis=1)
    np.testing.assert_allclose(curve["equity"], curve["cash"] + held, rtol=1e-12)
    assert (curve["cash"] >= 0).all()
    assert set(op["result"]["artifacts"]) == {"per_symbol", "equity_curve", "positions", "trades"}
    assert stored["trades"] == [], "a portfolio rebalances: no round trips to list"
    page = httpx.get(f"{local.api_url}/operations/{op['id']}", timeout=30).text
    table = page[
        page.index('id="per-symbol"') : page.index("</table>", page.index('id="per-symbol"'))
    ]
    assert '<th class="num" data-key="contribution_pct">contribution</th>' in table
    for expected in stored["per_symbol"]:
        assert f'<td class="num">{expected["weight"]:.3f}</td>' in table
        assert f'<td class="num">{expected["pnl"]:,.2f}</td>' in table


def _reject(api: Api, body: dict[str, Any]) -> str:
    response = api.http.post("/backtests/start", json=body)
    assert response.status_code == 422, response.text
    return str(response.json()["detail"])


def test_bad_universes_and_portfolios_are_refused_before_queueing(stack: Stack) -> None:
    _, api = stack
    before = api.http.get("/operations", params={"type": "backtesting"}).json()["count"]
    base = {"strategy": "sma_crossover", "timeframe": "1h"}
    detail = _reject(api, {**base, "symbols": ["AAA", "BBX"]})
    assert "no data for BBX 1h yet (did you mean 'BBB'?)" in detail
    assert "ktrdr data download BBX --timeframe 1h" in detail
    detail = _reject(api, {**base, "symbols": ["AAA", DAILY_ONLY]})
    assert f"the catalog has {DAILY_ONLY} 1d only" in detail
    detail = _reject(api, {**base, "timeframe": "4h", "symbols": SYMBOLS})
    assert detail.startswith("none of the 3 symbols has 4h data (they have 1h)")
    detail = _reject(api, {**base, "symbols": SYMBOLS, "portfolio": {
        "weights": {"AAA": 0.5, "BBB": 0.3, "CCC": 0.1}}})  # fmt: skip
    assert "weights add up to 0.9, not 1" in detail and "AAA: 0.5556" in detail
    detail = _reject(api, {**base, "symbols": SYMBOLS, "portfolio": {
        "weights": {"AAA": 1.2, "BBB": -0.1, "CCC": -0.1}}})  # fmt: skip
    assert "weights must be > 0 (BBB = -0.1, CCC = -0.1)" in detail
    detail = _reject(api, {**base, "symbols": SYMBOLS, "portfolio": {"rebalance": "montly"}})
    assert "unknown rebalance rule 'montly' (did you mean 'monthly'?)" in detail
    detail = _reject(api, {**base, "symbols": SYMBOLS, "portfolio": {
        "weights": {"AAA": 0.5, "BBB": 0.25, "CCD": 0.25}}})  # fmt: skip
    assert "weight for 'CCD', which is not in symbols (did you mean 'CCC'?)" in detail
    assert "no weight for 'CCC'" in detail
    detail = _reject(api, {**base, "portfolio": {}})
    assert "a portfolio needs symbols" in detail
    detail = _reject(api, {**base, "symbol": "AAA", "symbols": SYMBOLS})
    assert "give symbol (one) or symbols (several), not both" in detail
    after = api.http.get("/operations", params={"type": "backtesting"}).json()["count"]
    assert after == before, "nothing was queued"


def ktrdr(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ktrdr.cli.main", *args, "--url", api.base_url]
    env = {**os.environ, "COLUMNS": "140"}  # a wide terminal: no cell is cut short
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_cli_runs_a_universe_and_shows_the_per_symbol_table(stack: Stack) -> None:
    local, api = stack
    run = ktrdr(api, "backtest", "run", "sma_crossover", "--symbols", "AAA,BBB,CCC",
                "--timeframe", "1h", "--start", WINDOW["start"][:10], "--end",
                WINDOW["end"][:10], "--capital", str(CAPITAL), "--trades", "0")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sma_crossover on 3 symbols 1h (universe)" in run.stdout
    assert "Per symbol (universe)" in run.stdout
    strategy = _strategy()
    bars = _bars(local, strategy)
    for symbol, b in bars.items():
        single = run_backtest(
            symbol_strategy(strategy, symbol), b, capital=CAPITAL / 3, start=WINDOW["start"][:10],
            end=WINDOW["end"][:10],
        )  # fmt: skip
        line = next(ln for ln in run.stdout.splitlines() if ln.strip("│ ").startswith(symbol))
        assert f"{single.statistics.total_return_pct:.2f}%" in line
        assert f"{single.statistics.final_equity:,.2f}" in line
    op_id = next(w for w in run.stdout.split() if w.startswith("op_backtesting_"))
    show = ktrdr(api, "backtest", "show", op_id, "--trades", "0")
    assert show.returncode == 0 and "Per symbol (universe)" in show.stdout


def test_cli_runs_a_portfolio_with_weights(stack: Stack) -> None:
    _, api = stack
    run = ktrdr(api, "backtest", "run", "sma_crossover", "--symbols", "AAA,BBB,CCC",
                "--timeframe", "1h", "--portfolio", "--weights", "AAA=0.6,BBB=0.2,CCC=0.2",
                "--rebalance", "every_n_bars", "--every-bars", "48", "--json")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    op = json.loads(run.stdout)
    assert op["params"]["portfolio"] == {
        "weights": {"AAA": 0.6, "BBB": 0.2, "CCC": 0.2}, "rebalance": "every_n_bars",
        "every_bars": 48,
    }  # fmt: skip
    assert op["result"]["kind"] == "portfolio"
    bad = ktrdr(api, "backtest", "run", "sma_crossover", "--symbols", "AAA,BBB",
                "--timeframe", "1h", "--portfolio", "--rebalance", "yearly")  # fmt: skip
    assert bad.returncode == 3
    assert "unknown rebalance rule 'yearly'" in bad.stdout + bad.stderr


def test_training_on_several_symbols_stacks_their_own_splits(stack: Stack) -> None:
    from ktrdr.engine.strategy.paths import apply_overrides
    from ktrdr.engine.training import evaluate, fit_model
    from ktrdr.engine.training.stacked import per_symbol_summary, prepare_stacked_training_data

    local, api = stack
    symbols = ["AAA", "BBB"]
    body = {"strategy": "fuzzy_nn", "symbols": symbols, "timeframe": "1h", "epochs": 2}
    response = api.http.post("/training/start", json=body)
    assert response.status_code == 202, response.text
    op = api.wait_status(response.json()["id"], {"completed", "failed"}, 120)
    assert op["status"] == "completed", op["error"]
    result = op["result"]
    # The engine, run here on the same stored bars, gives the same split and model.
    strategy = apply_overrides(_strategy("fuzzy_nn"), {"training.epochs": 2})
    store = DataStore(local.data_home / "data")
    bars = {s: store.load(s, "1h", None, None, warmup_bars=strategy.warmup_bars()) for s in symbols}
    stacked = prepare_stacked_training_data(strategy, bars)
    fitted = fit_model(stacked.data, strategy.training)
    predicted = fitted.predict_proba(stacked.data.X[stacked.data.test]).argmax(axis=1)
    assert result["symbols"] == symbols
    assert result["per_symbol"] == _json(per_symbol_summary(stacked, predicted))
    assert result["evaluation"] == _json(evaluate(fitted, stacked.data))
    for symbol in symbols:
        ranges = result["per_symbol"][symbol]["date_ranges"]
        assert ranges["train"]["end"] < ranges["validation"]["start"] < ranges["test"]["start"]
    assert result["model"]["symbol"] == "AAA,BBB"
    # The model serves a backtest of each symbol it was trained on, and of the universe.
    version = result["model"]["version"]
    pinned = {"decisions.model.version": version}  # 2 epochs need not beat the baseline
    for run in ({"symbol": "BBB"}, {"symbols": symbols}):
        _, stored = _run(
            api, {"strategy": "fuzzy_nn", "timeframe": "1h", "overrides": pinned, **run}
        )
        assert stored["model"]["version"] == version
        assert stored["warnings"], "the training window overlaps: in-sample, and said so"
    detail = _reject(
        api, {"strategy": "fuzzy_nn", "timeframe": "1h", "symbol": "CCC", "overrides": pinned}
    )
    assert "was trained on AAA,BBB 1h, this run is CCC 1h" in detail
    # The CLI: --symbols, and the per-symbol table after the run.
    cli = ktrdr(api, "train", "run", "fuzzy_nn", "--symbols", "AAA,BBB", "--timeframe", "1h",
                "--epochs", "1")  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "Per symbol (each split on its own)" in cli.stdout
    for symbol in symbols:
        test = result["per_symbol"][symbol]["date_ranges"]["test"]
        row = next(ln for ln in cli.stdout.splitlines() if ln.strip("│ ").startswith(symbol))
        assert test["start"][:10] in row and f"{test['rows']:,}" in row
    detail = _reject_training(api, {**body, "overrides": {"training.model": "lstm"}})
    assert "training.model lstm learns from sequences" in detail
    detail = _reject_training(
        api, {**body, "overrides": {"training.validation.method": "purged_kfold"}}
    )
    assert "use method chronological for several symbols" in detail
    detail = _reject_training(api, {**body, "symbols": ["AAA", "BBX"]})
    assert "no data for BBX 1h yet (did you mean 'BBB'?)" in detail


def _reject_training(api: Api, body: dict[str, Any]) -> str:
    response = api.http.post("/training/start", json=body)
    assert response.status_code == 422, response.text
    return str(response.json()["detail"])
