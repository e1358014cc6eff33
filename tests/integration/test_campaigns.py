"""Sweeps as parent operations with chunk children, on the real API and two workers."""

from __future__ import annotations

import io
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.campaigns.diagnostics import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from ktrdr.engine.campaigns.walkforward import walkforward_windows
from ktrdr.engine.data import DataStore
from ktrdr.engine.strategy.loader import validate_strategy_text
from ktrdr.engine.strategy.search import SearchSpace
from ktrdr.local_stack import LocalStack
from tests.support.campaign_strategies import SWEEP_STRATEGY
from tests.support.stack import Api, StackFactory, wait_for

SYMBOL = "EURUSD"
BARS = 3000

FAST, SLOW = "indicators.sma_fast.params.period", "indicators.sma_slow.params.period"

# On more bars (LONG_SYMBOL), a grid whose chunks of 50-60 evaluate for most of a second
# even on a quiet machine, so that progress (reported every 0.25 s) shows one half-way:
# 200,000 bars were enough until the batch got faster (2026-12-03: ~3 ms a combination
# there, a chunk over before its first report), 20,000 before that.
LONG_SYMBOL, LONG_BARS = "GBPUSD", 1_000_000
LONG_STRATEGY = (
    SWEEP_STRATEGY.replace("{range: [4, 16, 4]}", "{range: [2, 61, 1]}")
    .replace("{values: [12, 30, 50]}", "{values: [100, 200]}")
    .replace("symbol: EURUSD", f"symbol: {LONG_SYMBOL}")
)


def download(api: Api, symbol: str, bars: int) -> None:
    body = {"symbol": symbol, "timeframe": "1h", "provider": "synthetic", "bars": bars, "seed": 3}
    response = api.http.post("/data/downloads/start", json=body)
    assert response.status_code == 202, response.text
    done = api.wait_status(response.json()["id"], {"completed", "failed"}, 60)
    assert done["status"] == "completed", done["error"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Api]]:
    factory = StackFactory(tmp_path_factory.mktemp("campaigns"))
    local, api = factory.start(workers=2)
    download(api, SYMBOL, BARS)
    download(api, LONG_SYMBOL, LONG_BARS)
    yield local, api
    factory.stop_all()


def start_sweep(api: Api, **body: Any) -> dict[str, Any]:
    response = api.http.post("/sweeps/start", json={"strategy": SWEEP_STRATEGY, **body})
    assert response.status_code == 202, response.text
    op: dict[str, Any] = response.json()
    assert op["type"] == "sweep" and op["status"] == "pending"
    return op


def finish(api: Api, op_id: str, timeout_s: float = 60) -> dict[str, Any]:
    done = api.wait_status(op_id, {"completed", "failed", "cancelled"}, timeout_s)
    assert done["status"] == "completed", (done["error"], done["status_reason"])
    return done


def children(api: Api, op_id: str) -> list[dict[str, Any]]:
    page = api.http.get("/operations", params={"parent_id": op_id, "limit": 500}).json()
    data: list[dict[str, Any]] = page["data"]
    return data


def all_results(api: Api, op_id: str, **params: Any) -> list[dict[str, Any]]:
    page = api.http.get(
        f"/operations/{op_id}/sweep-results", params={"limit": 10_000, **params}
    ).json()
    data: list[dict[str, Any]] = page["data"]
    assert page["count"] == len(data)
    return data


def assert_same_statistics(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float) and math.isfinite(value):
            assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert got[key] == value, key


def test_a_sweep_without_chunk_size_has_one_chunk_per_idle_worker(
    stack: tuple[LocalStack, Api],
) -> None:
    _, api = stack
    wait_for(lambda: len(idle_backtesters(api)) == 2, 30, "both backtesting workers idle")
    op = start_sweep(api)
    done = finish(api, op["id"])
    chunks = children(api, op["id"])
    # 10 combinations on the stack's 2 idle backtesting workers: 2 chunks of 5.
    assert len(chunks) == 2
    whole = [api.http.get(f"/operations/{c['id']}").json() for c in chunks]
    assert [len(c["params"]["combinations"]) for c in whole] == [5, 5]
    assert done["result"]["evaluated"] == 10


def idle_backtesters(api: Api) -> list[dict[str, Any]]:
    workers = api.http.get("/workers").json()["data"]
    return [
        w for w in workers
        if "backtesting" in w["kinds"] and w["state"] == "online" and not w["current_operation_id"]
    ]  # fmt: skip


def test_grid_sweep_on_two_workers_equals_each_combination_run_as_a_backtest(
    stack: tuple[LocalStack, Api],
) -> None:
    local, api = stack
    op = start_sweep(api, chunk_size=2, capital=50_000)
    done = finish(api, op["id"])

    strategy = validate_strategy_text(SWEEP_STRATEGY)
    space = SearchSpace.from_strategy(strategy)
    grid = space.grid()
    assert len(grid) == 10  # 4 fast periods x 3 slow ones with fast < slow
    results = sorted(all_results(api, op["id"]), key=lambda r: r["combination"])
    assert [r["params"] for r in results] == grid
    bars = DataStore(local.data_home / "data").load(SYMBOL, "1h")
    for result in results:
        expected = run_backtest(space.apply(strategy, result["params"]), bars, capital=50_000)
        assert_same_statistics(result["statistics"], expected.statistics.to_dict())

    chunks = children(api, op["id"])
    assert len(chunks) == 5 and {c["type"] for c in chunks} == {"sweep_chunk"}
    assert {c["parent_id"] for c in chunks} == {op["id"]}
    assert {c["status"] for c in chunks} == {"completed"}
    assert len({c["worker_id"] for c in chunks}) == 2, "both workers took chunks"
    assert {c["trace_id"] for c in chunks} == {done["trace_id"]}, "chunks join the sweep's trace"

    best = max(results, key=lambda r: r["statistics"]["sharpe_ratio"])
    summary = done["result"]
    assert summary["best"]["params"] == best["params"]
    assert summary["combinations"] == summary["evaluated"] == 10
    assert done["progress"]["items_done"] == 10 and done["progress"]["percent"] == 100
    # Overfitting diagnostics from the compact per-combination returns the chunks kept.
    diagnostics = summary["diagnostics"]
    assert diagnostics["trials"] == 10
    blocks = np.array([r["extra"]["block_returns"] for r in results]).T
    assert blocks.shape == (128, 10)
    assert diagnostics["probability_of_backtest_overfitting"] == pytest.approx(
        probability_of_backtest_overfitting(blocks, n_splits=16), abs=1e-12
    )
    per_period = [
        r["statistics"]["sharpe_ratio"] / math.sqrt(r["statistics"]["bars_per_year"])
        for r in results
    ]
    best_row = next(r for r in results if r["key"] == summary["best"]["key"])
    chosen = best_row["statistics"]
    assert diagnostics["deflated_sharpe_ratio"] == pytest.approx(
        deflated_sharpe_ratio(
            chosen["sharpe_ratio"] / math.sqrt(chosen["bars_per_year"]), 10,
            float(np.var(per_period, ddof=1)), BARS,
            best_row["extra"]["skew"], best_row["extra"]["kurtosis"],
        ),
        abs=1e-12,
    )  # fmt: skip
    top = api.http.get(f"/operations/{op['id']}/sweep-results", params={"limit": 3}).json()
    assert [r["key"] for r in top["data"]] == [r["key"] for r in summary["top"][:3]]
    by_trades = all_results(api, op["id"], sort="num_trades", order="asc")
    trades = [r["statistics"]["num_trades"] for r in by_trades]
    assert trades == sorted(trades)

    # The whole table is an artifact too: Parquet equals the rows, best first.
    raw = api.http.get(
        f"/operations/{op['id']}/results/sweep_results", params={"format": "parquet"}
    )
    assert raw.status_code == 200, raw.text
    table = pd.read_parquet(io.BytesIO(raw.content))
    ranked_keys = [r["key"] for r in all_results(api, op["id"])]  # the route's default: best first
    assert list(table["key"]) == ranked_keys and list(table["rank"]) == list(range(1, 11))
    by_key = {r["key"]: r for r in results}
    for row in table.to_dict("records"):
        stored = by_key[row["key"]]
        assert row[FAST] == stored["params"][FAST] and row[SLOW] == stored["params"][SLOW]
        assert row["sharpe_ratio"] == stored["statistics"]["sharpe_ratio"]
        assert row["num_trades"] == stored["statistics"]["num_trades"]
    entry = summary["artifacts"]["sweep_results"]
    assert entry["rows"] == 10 and entry["preview_rows"] == 20
    inline = api.http.get(f"/operations/{op['id']}/results", params={"part": "sweep_results"})
    assert [r["key"] for r in inline.json()] == ranked_keys


def test_min_trades_keeps_thin_results_from_ranking_best(stack: tuple[LocalStack, Api]) -> None:
    _, api = stack
    op = start_sweep(api, chunk_size=10, min_trades=10_000)
    done = finish(api, op["id"])
    assert done["result"]["best"] is None and done["result"]["eligible"] == 0
    assert done["result"]["evaluated"] == 10


def _params_by_index(api: Api, op_id: str) -> list[dict[str, Any]]:
    return [r["params"] for r in sorted(all_results(api, op_id), key=lambda r: r["combination"])]


@pytest.mark.parametrize("method", ["tpe", "random"])
def test_seeded_searches_are_reproducible_run_to_run(
    stack: tuple[LocalStack, Api], method: str
) -> None:
    _, api = stack
    body = {"method": method, "trials": 6, "seed": 11, "batch_size": 3, "chunk_size": 2}
    first = finish(api, start_sweep(api, **body)["id"])
    second = finish(api, start_sweep(api, **body)["id"])
    tried = _params_by_index(api, first["id"])
    assert len(tried) == 6
    assert tried == _params_by_index(api, second["id"])
    assert first["result"]["best"] == second["result"]["best"]
    space = SearchSpace.from_strategy(validate_strategy_text(SWEEP_STRATEGY))
    assert all(space.is_feasible(p) for p in tried)
    if method == "tpe":
        # Two rounds of three: the second was asked only after the first was stored.
        chunks = sorted(children(api, first["id"]), key=lambda c: c["created_at"])
        assert len(chunks) == 4
        first_round_done = max(c["completed_at"] for c in chunks[:2])
        assert min(c["created_at"] for c in chunks[2:]) >= first_round_done


def _mid_chunk(api: Api, op_id: str) -> dict[str, Any]:
    def running_chunk() -> dict[str, Any] | None:
        for c in children(api, op_id):
            done = c["progress"]["items_done"] or 0
            if c["status"] == "running" and 0 < done < (c["progress"]["items_total"] or 0):
                return c
        return None

    return wait_for(running_chunk, 30, "a chunk half-way through")


def test_cancelled_sweep_leaves_no_chunk_running_and_every_worker_free(
    stack: tuple[LocalStack, Api],
) -> None:
    _, api = stack
    response = api.http.post("/sweeps/start", json={"strategy": LONG_STRATEGY, "chunk_size": 50})
    op = response.json()
    _mid_chunk(api, op["id"])
    cancelled = api.http.post(f"/operations/{op['id']}/cancel").json()
    answered = datetime.now(UTC)
    assert cancelled["status"] == "cancelled"

    def settled() -> list[dict[str, Any]] | None:
        chunks = children(api, op["id"])
        ended = all(c["status"] in ("cancelled", "completed") for c in chunks)
        return chunks if ended else None

    chunks = wait_for(settled, 20, "every chunk ended")
    assert len(chunks) == math.ceil(120 / 50)
    # A chunk seen half-way may still have finished before the cancel reached it (its last
    # combinations take milliseconds); none finished after, and the rest were cancelled.
    finished = [c for c in chunks if c["status"] == "completed"]
    assert all(datetime.fromisoformat(c["completed_at"]) <= answered for c in finished)
    assert len(finished) < len(chunks)
    wait_for(
        lambda: all(w["current_operation_id"] is None for w in api.workers()), 20, "idle workers"
    )
    assert len(api.workers()) == 2
    assert api.op(op["id"])["status"] == "cancelled"


BAD_SWEEPS = [
    ({"strategy": "sma_crossover"}, "no search: section"),
    ({"objective": "sharp"}, "did you mean 'sharpe'"),
    ({"method": "random"}, "needs trials"),
    ({"method": "grid", "trials": 5}, "a grid tries every point"),
    ({"method": "bayes"}, "grid"),
    ({"chunk_size": 0}, "chunk_size"),
    (
        {"strategy": SWEEP_STRATEGY.replace("sma_fast.period <", "sma_fst.period <")},
        "did you mean 'sma_fast.period'",
    ),
    (
        {
            "strategy": SWEEP_STRATEGY.replace(
                "indicators.sma_fast.params.period:", "indicators.sma_fats.params.period:"
            )
        },
        "sma_fast",
    ),
    (
        {"strategy": SWEEP_STRATEGY.replace("[12, 30, 50]", "[2, 3]")},
        "no combination",
    ),
]


@pytest.mark.parametrize(("change", "fix"), BAD_SWEEPS)
def test_bad_sweeps_are_refused_before_queueing_with_the_fix(
    stack: tuple[LocalStack, Api], change: dict[str, Any], fix: str
) -> None:
    _, api = stack
    before = api.http.get("/operations", params={"type": "sweep"}).json()["count"]
    response = api.http.post("/sweeps/start", json={"strategy": SWEEP_STRATEGY, **change})
    assert response.status_code == 422, response.text
    assert fix in response.json()["detail"]
    assert api.http.get("/operations", params={"type": "sweep"}).json()["count"] == before


def test_results_route_refuses_unknown_sort_keys_and_non_campaigns(
    stack: tuple[LocalStack, Api],
) -> None:
    _, api = stack
    op = finish(api, start_sweep(api, chunk_size=8)["id"])
    response = api.http.get(f"/operations/{op['id']}/sweep-results", params={"sort": "sharp"})
    assert response.status_code == 422 and "did you mean 'sharpe'" in response.json()["detail"]
    chunk = children(api, op["id"])[0]
    response = api.http.get(f"/operations/{chunk['id']}/sweep-results")
    assert response.status_code == 422 and "not a sweep" in response.json()["detail"]
    assert api.http.get("/operations/op_nope/sweep-results").status_code == 404


def test_cli_sweep_run_and_show_write_a_self_contained_report(
    stack: tuple[LocalStack, Api], tmp_path: Path
) -> None:
    local, api = stack
    strategy_file = tmp_path / "sweep.yaml"
    strategy_file.write_text(SWEEP_STRATEGY)
    run = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "sweep", "run", str(strategy_file),
         "--chunk-size", "5", "--top", "3", "--url", local.api_url],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "10/10 combinations, best sharpe" in run.stdout
    assert "top 3 of 10 by sharpe" in run.stdout and "sma_fast.period" in run.stdout
    op_id = run.stdout.split("queued ", 1)[1].split()[0]
    diagnostics = api.op(op_id)["result"]["diagnostics"]
    assert "\ntrials: 10\n" in run.stdout, "a count reads as a count"
    assert f"deflated_sharpe_ratio: {diagnostics['deflated_sharpe_ratio']:.4f}" in run.stdout

    def ops_list(*extra: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, "-m", "ktrdr.cli.main", "ops", "list", "--json", "--limit", "500",
             "--url", local.api_url, *extra],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        data: list[dict[str, Any]] = json.loads(done.stdout)["data"]
        return data

    # What a person lists: the sweep, not the chunks it ran as (unless asked for them).
    listed = ops_list()
    assert op_id in {o["id"] for o in listed} and all(o["parent_id"] is None for o in listed)
    chunks = ops_list("--parent", op_id)
    assert len(chunks) == 2 and {o["parent_id"] for o in chunks} == {op_id}
    assert {o["id"] for o in chunks} <= {o["id"] for o in ops_list("--chunks")}
    report = tmp_path / "report.html"
    show = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "sweep", "show", op_id, "--top", "5",
         "--html", str(report), "--url", local.api_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert show.returncode == 0, show.stderr
    text = report.read_text()
    assert 'aria-label="heatmap"' in text and text.count("<rect") == 4 * 3
    assert 'aria-label="sensitivity to sma_fast.period"' in text
    assert 'aria-label="sensitivity to sma_slow.period"' in text
    assert "<script" not in text and "http" not in text, "self-contained, offline"
    best = api.op(op_id)["result"]["best"]
    assert f"<td>{best['combination']}</td>" in text


def test_walkforward_stitched_out_of_sample_equals_the_chosen_params_run_window_by_window(
    stack: tuple[LocalStack, Api], tmp_path: Path
) -> None:
    local, api = stack
    body = {"strategy": SWEEP_STRATEGY, "train_bars": 1000, "test_bars": 500, "chunk_size": 10}
    response = api.http.post("/walkforwards/start", json=body)
    assert response.status_code == 202, response.text
    done = finish(api, response.json()["id"], timeout_s=90)
    result = done["result"]
    windows = result["windows"]
    assert len(windows) == 4  # train 1000 + test 500, stepping 500 over 3000 bars
    strategy = validate_strategy_text(SWEEP_STRATEGY)
    space = SearchSpace.from_strategy(strategy)
    bars = DataStore(local.data_home / "data").load(SYMBOL, "1h")
    stitched, equity = [], 100_000.0
    for w in windows:
        assert w["train_end"] < w["test_start"], "test bars come after all training bars"
        in_sample = api.http.get(
            f"/operations/{done['id']}/sweep-results",
            params={"stage": "in_sample", "window": w["window"], "limit": 1},
        ).json()
        assert in_sample["count"] == 10 and in_sample["data"][0]["params"] == w["params"]
        run = run_backtest(
            space.apply(strategy, w["params"]), bars, start=w["test_start"], end=w["test_end"]
        )
        assert_same_statistics(w["out_of_sample"], run.statistics.to_dict())
        curve = run.equity_curve * (equity / 100_000.0)
        stitched += [[t.isoformat(), v] for t, v in curve.items()]
        equity = float(curve.iloc[-1])
    assert [p[0] for p in result["stitched_equity"]] == [p[0] for p in stitched]
    got = np.array([p[1] for p in result["stitched_equity"]])
    assert got == pytest.approx(np.array([p[1] for p in stitched]), rel=1e-12)
    assert result["stitched"]["total_return_pct"] == pytest.approx((equity / 1e5 - 1) * 100)
    is_mean = np.mean([w["in_sample_objective"] for w in windows])
    oos_mean = np.mean([w["out_of_sample_objective"] for w in windows])
    # On these synthetic bars even the in-sample best loses (mean objective < 0): there is
    # no edge whose survival a ratio could measure, so there is none (the unit tests check
    # the ratio itself); before, two losses gave a "positive efficiency".
    assert is_mean < 0 and oos_mean < 0
    assert result["walkforward_efficiency"] is None
    assert len(children(api, done["id"])) == 1 + 4 + 1  # windows, 4 in-sample, 1 OOS
    table = api.http.get(f"/operations/{done['id']}/results/sweep_results").json()
    assert [(r["stage"], r["window"]) for r in table] == sorted(
        [("in_sample", w["window"]) for w in windows for _ in range(10)]
        + [("out_of_sample", w["window"]) for w in windows]
    )

    report = tmp_path / "wf.html"
    show = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "walkforward", "show", done["id"],
         "--html", str(report), "--url", local.api_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert "walk-forward efficiency n/a (the in-sample objective is not positive" in " ".join(
        show.stdout.split()
    )
    assert report.read_text().count("window from ") == 4
    # An 80-column terminal (what Rich assumes off a terminal) shows every window's
    # chosen values and its test start whole.
    lines = show.stdout.splitlines()
    for w in windows:
        start = w["test_start"][:16].replace("T", " ")
        row = next(line for line in lines if line.startswith(f"{w['window']}  {start}"))
        values = row.split()[5 : 5 + len(w["params"])]
        assert values == [str(v) for v in w["params"].values()], row


def test_walkforward_windows_given_as_durations_follow_the_bar_timestamps(
    stack: tuple[LocalStack, Api],
) -> None:
    local, _ = stack
    cli = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "walkforward", "run", SWEEP_STRATEGY,
         "--train-period", "40D", "--test-period", "20D", "--step-period", "30D",
         "--url", local.api_url, "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr
    done = json.loads(cli.stdout)
    assert done["status"] == "completed", done["error"]
    bars = DataStore(local.data_home / "data").load(SYMBOL, "1h")
    expected = walkforward_windows(
        pd.DatetimeIndex(bars.index), train="40D", test="20D", step="30D"
    )
    got = done["result"]["windows"]
    assert len(got) == len(expected) >= 2
    for w, e in zip(got, expected, strict=True):
        assert pd.Timestamp(w["train_start"]) == e.train_first
        assert pd.Timestamp(w["train_end"]) == e.train_last
        assert pd.Timestamp(w["test_start"]) == e.test_first
        assert pd.Timestamp(w["test_end"]) == e.test_last
        # A duration window holds the bars inside it, however many that is.
        assert pd.Timestamp(w["test_end"]) - pd.Timestamp(w["test_start"]) < pd.Timedelta("20D")
    assert done["result"]["train_period"] == "40D" and done["result"]["step_period"] == "30D"
    assert done["result"]["train_bars"] is None


def test_bad_walkforwards_are_refused_before_queueing(stack: tuple[LocalStack, Api]) -> None:
    _, api = stack
    for change, fix in (
        ({"method": "tpe", "trials": 5}, "grid or random"),
        ({"test_bars": 1}, "test_bars"),
        ({"objective": "sharpee"}, "did you mean 'sharpe'"),
        ({"train_period": "40D"}, "all as bar counts"),
        ({"train_bars": None, "train_period": "40D"}, "all as bar counts"),
        ({"train_bars": None}, "both train_bars and test_bars"),
        (
            {
                "train_bars": None,
                "test_bars": None,
                "train_period": "40 fortnights",
                "test_period": "20D",
            },
            "is not a duration",
        ),
        (
            {"train_bars": None, "test_bars": None, "train_period": "1e30D", "test_period": "20D"},
            "is not a duration",
        ),
        (
            {"train_bars": None, "test_bars": None, "train_period": "-5D", "test_period": "20D"},
            "longer than 0",
        ),
        ({"train_bars": None, "test_bars": None, "test_period": "20D"}, "both train_period"),
    ):
        body = {"strategy": SWEEP_STRATEGY, "train_bars": 1000, "test_bars": 500, **change}
        response = api.http.post("/walkforwards/start", json=body)
        assert response.status_code == 422, response.text
        assert fix in response.json()["detail"]


# Last in the module: it leaves the shared stack with one worker.
def test_killed_worker_mid_sweep_still_stores_every_combination_once(
    stack: tuple[LocalStack, Api],
) -> None:
    local, api = stack
    # A chunk seen half-way may still finish before the kill lands (its report already on
    # the wire), and then nothing is lost. So the worker is frozen first, and killed only
    # once the API still shows its chunk running; otherwise it is thawed and we try again.
    for _ in range(5):
        response = api.http.post(
            "/sweeps/start", json={"strategy": LONG_STRATEGY, "chunk_size": 60}
        )
        op = response.json()
        chunk = _mid_chunk(api, op["id"])
        # A worker's id ends in its port (`host-port`).
        victim = next(
            w for w in local.workers if chunk["worker_id"].endswith("-" + w.url.rsplit(":")[-1])
        )
        assert victim.process is not None
        victim.process.send_signal(signal.SIGSTOP)
        time.sleep(0.5)  # a report sent just before the freeze reaches the API
        if api.op(chunk["id"])["status"] == "running":
            victim.kill()
            break
        victim.process.send_signal(signal.SIGCONT)
        finish(api, op["id"], timeout_s=90)
    else:
        pytest.fail("no chunk could be caught running in five sweeps")

    done = finish(api, op["id"], timeout_s=90)
    results = all_results(api, op["id"])
    assert sorted(r["combination"] for r in results) == list(range(120))
    assert len({r["key"] for r in results}) == 120
    rerun = next(c for c in children(api, op["id"]) if c["id"] == chunk["id"])
    assert rerun["attempt"] == 2 and rerun["worker_id"] != chunk["worker_id"]
    assert done["result"]["evaluated"] == 120
