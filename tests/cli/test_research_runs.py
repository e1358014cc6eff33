"""Running, finding and comparing backtests from the CLI (a subprocess against the real
stack): --set overrides, backtest list / compare, show --csv, ops show parameters, and the
HTML report rendered in headless Chromium."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.local_stack import LocalStack
from tests.support.cli import ktrdr
from tests.support.stack import Api, StackFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Api]]:
    factory = StackFactory(tmp_path_factory.mktemp("runs"))
    local, api = factory.start(workers=1)
    op = api.http.post(
        "/data/downloads/start",
        json={"symbol": "EURUSD", "timeframe": "1h", "provider": "synthetic", "bars": 1500},
    ).json()
    api.wait_status(op["id"], {"completed"}, 60)
    yield local, api
    factory.stop_all()


@pytest.fixture(scope="module")
def api(stack: tuple[LocalStack, Api]) -> Api:
    return stack[1]


def run_json(api: Api, *args: str) -> dict[str, Any]:
    result = ktrdr(*args, "--json", url=api.base_url)
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


@pytest.fixture(scope="module")
def two_runs(api: Api) -> list[dict[str, Any]]:
    """sma_crossover as packaged, and with --set overrides."""
    plain = run_json(api, "backtest", "run", "sma_crossover")
    changed = run_json(
        api, "backtest", "run", "sma_crossover",
        "--set", "indicators.sma_fast.params.period=5", "--set", "costs.commission=0.0002",
    )  # fmt: skip
    # The record keeps statistics and table references; the tables come from /results.
    for op in (plain, changed):
        op["result"] = api.http.get(f"/operations/{op['id']}/results").json()
    return [plain, changed]


def test_set_overrides_are_applied_validated_and_stored(
    api: Api, two_runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    changed = two_runs[1]
    assert changed["params"]["overrides"] == {
        "indicators.sma_fast.params.period": 5,
        "costs.commission": 0.0002,
    }
    effective = changed["result"]["effective_strategy"]
    assert effective["indicators"][0]["params"] == {"period": 5, "source": "close"}
    assert effective["indicators"][0]["id"] == "sma_fast"
    assert effective["costs"]["commission"] == 0.0002 and changed["result"]["commission"] == 0.0002
    # The same as a copy of the file with those values in it.
    from ktrdr.engine.strategy.loader import builtin_strategy_text

    text = builtin_strategy_text("sma_crossover")
    text = text.replace("params: {period: 10}", "params: {period: 5}")
    text = text.replace("commission: 0.001 ", "commission: 0.0002 ")
    copy = tmp_path / "copy.yaml"
    copy.write_text(text)
    by_file = run_json(api, "backtest", "run", str(copy))
    assert by_file["result"]["statistics"] == changed["result"]["statistics"]
    assert by_file["result"]["statistics"] != two_runs[0]["result"]["statistics"]
    # Validated like the file, before anything is queued.
    bad_path = ktrdr(
        "backtest", "run", "sma_crossover", "--set", "indicators.sma_fast.params.perod=5",
        url=api.base_url,
    )  # fmt: skip
    assert bad_path.returncode == 3
    assert "no 'perod' under indicators.sma_fast.params (did you mean 'period'?)" in (
        bad_path.stderr
    )
    bad_value = ktrdr("train", "run", "fuzzy_nn", "--set", "training.epochs=0", url=api.base_url)
    assert bad_value.returncode == 3
    assert "with training.epochs=0" in bad_value.stderr
    assert "greater than or equal to 1" in bad_value.stderr
    not_a_pair = ktrdr("backtest", "run", "sma_crossover", "--set", "costs", url=api.base_url)
    assert not_a_pair.returncode == 2 and "is not PATH=VALUE" in not_a_pair.stderr


def test_backtest_list_filters_and_sorts(api: Api, two_runs: list[dict[str, Any]]) -> None:
    rows = run_json(api, "backtest", "list", "--sort", "sharpe")
    assert isinstance(rows, list)
    by_id = {r["operation_id"]: r for r in rows}
    for op in two_runs:
        stats = op["result"]["statistics"]
        row = by_id[op["id"]]
        assert (row["strategy"], row["symbol"], row["timeframe"]) == (
            "sma_crossover",
            "EURUSD",
            "1h",
        )
        assert (row["start"], row["end"]) == (stats["start"], stats["end"])
        assert row["total_return_pct"] == stats["total_return_pct"]
        assert row["sharpe_ratio"] == stats["sharpe_ratio"]
        assert row["max_drawdown_pct"] == stats["max_drawdown_pct"]
        assert row["num_trades"] == stats["num_trades"]
    sharpes = [r["sharpe_ratio"] for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)
    assert run_json(api, "backtest", "list", "--symbol", "GBPUSD") == []
    human = ktrdr("backtest", "list", url=api.base_url)
    assert human.returncode == 0 and two_runs[0]["id"] in human.stdout
    assert "Sharpe" in human.stdout and "max DD" in human.stdout


def test_compare_show_csv_and_ops_show(
    api: Api, two_runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    ids = [op["id"] for op in two_runs]
    report = tmp_path / "compare.html"
    compared = ktrdr("backtest", "compare", *ids, "--json", "--html", str(report), url=api.base_url)
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout) == {op["id"]: op["result"]["statistics"] for op in two_runs}
    page = report.read_text()
    assert all(op_id in page for op_id in ids) and 'id="equity-compare"' in page
    assert page.count('"name":"sma_crossover EURUSD (') == 2  # one equity curve per backtest
    human = ktrdr("backtest", "compare", *ids, url=api.base_url)
    assert "total return" in human.stdout and "Sharpe" in human.stdout

    out = tmp_path / "csv"
    shown = ktrdr("backtest", "show", ids[0], "--trades", "0", "--csv", str(out), url=api.base_url)
    assert shown.returncode == 0, shown.stderr
    with (out / "trades.csv").open() as f:
        trades = list(csv.DictReader(f))
    result = two_runs[0]["result"]
    assert len(trades) == result["statistics"]["num_trades"] == len(result["trades"])
    first = result["trades"][0]
    assert float(trades[0]["commission"]) == first["commission"]
    assert int(trades[0]["bars_held"]) == first["bars_held"]
    assert trades[0]["exit_reason"] == first["exit_reason"]
    with (out / "equity.csv").open() as f:
        equity = list(csv.DictReader(f))
    assert [float(e["equity"]) for e in equity] == [p["equity"] for p in result["equity_curve"]]

    panel = ktrdr("ops", "show", ids[1], url=api.base_url)
    assert panel.returncode == 0
    lines = [" ".join(line.split()) for line in panel.stdout.splitlines()]
    assert "strategy sma_crossover" in lines and "symbol EURUSD" in lines
    assert "set indicators.sma_fast.params.period=5" in lines
    assert "set costs.commission=0.0002" in lines


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_html_report_renders_its_charts_in_chromium(
    api: Api, two_runs: list[dict[str, Any]], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    op = two_runs[0]
    report = tmp_path / "report.html"
    shown = ktrdr("backtest", "show", op["id"], "--html", str(report), url=api.base_url)
    assert shown.returncode == 0, shown.stderr
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1400})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            page.wait_for_selector("#charts .main-svg", timeout=30_000)
            drawn = page.evaluate(
                """() => {
                  const gd = document.getElementById('charts');
                  const box = gd.querySelector('.main-svg').getBoundingClientRect();
                  return {
                    traces: gd.data.map(t => t.name),
                    points: gd.data[0].x.length,
                    axes: [1, 2, 3, 4].map(i => gd._fullLayout['xaxis' + (i > 1 ? i : '')].type),
                    width: box.width, height: box.height,
                    lines: gd.querySelectorAll('.scatterlayer .trace path.js-line').length,
                    markers: gd.querySelectorAll('.scatterlayer .point').length,
                    months: document.querySelectorAll('h2 + table tr').length,
                  };
                }"""
            )
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert all(url.startswith("file:") for url in requests)  # nothing fetched
    assert drawn["traces"] == [
        "strategy", "buy & hold", "drawdown", "close", "entry", "exit", "rolling Sharpe"
    ]  # fmt: skip
    assert drawn["points"] == len(op["result"]["equity_curve"])
    assert drawn["axes"] == ["date"] * 4
    assert drawn["width"] > 800 and drawn["height"] > 800
    assert drawn["lines"] >= 5  # every line trace drew a path
    assert drawn["markers"] == 2 * op["result"]["statistics"]["num_trades"]
    assert drawn["months"] >= 2  # header + at least one year of monthly returns
    assert (tmp_path / "report.png").stat().st_size > 20_000


BAD_STRATEGY = """
name: bad
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: rsi, type: rsii, params: {period: 14}}
fuzzy_sets:
  rsi:
    input: rsi
    sets:
      low: {shape: left_shoulder, points: [30]}
decisions:
  rules: ["IF rsi IS low THEN BUY"]
"""


def test_strategy_validate_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_STRATEGY)
    result = ktrdr("strategy", "validate", str(bad), "--json")
    assert result.returncode == 3
    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 3, problems
    assert any("did you mean 'rsi'" in p for p in problems)  # the indicator type
    assert any("left_shoulder needs 2 points [a, b]" in p for p in problems)
    assert any("did you mean 'fuzzy_rules'?" in p for p in problems)
    human = ktrdr("strategy", "validate", str(bad))
    assert human.returncode == 3 and human.stdout.count("error: ") == 3
    assert "[a, b]" in human.stdout
    from ktrdr.engine.strategy.loader import builtin_strategy_text

    good = tmp_path / "good.yaml"
    good.write_text(builtin_strategy_text("rsi_fuzzy"))
    ok = ktrdr("strategy", "validate", str(good))
    assert ok.returncode == 0 and "valid — rsi_fuzzy" in ok.stdout
    assert ktrdr("strategy", "validate", str(good), "--set", "costs.commission=-1").returncode == 3


def test_strategy_explain_and_debug_frames(stack: tuple[LocalStack, Api], tmp_path: Path) -> None:
    import pandas as pd

    from ktrdr.engine.data import DataStore
    from ktrdr.engine.data.window import prepare_data
    from ktrdr.engine.features import compute_features, fuzzy_memberships
    from ktrdr.engine.strategy import load_strategy

    local, api = stack
    out = tmp_path / "frames.parquet"
    run = run_json(api, "backtest", "run", "rsi_fuzzy", "--debug-frames", str(out))
    frame = pd.read_parquet(out)
    assert "debug_frame" not in run["result"]
    assert len(frame) == run["result"]["statistics"]["bars"]
    rules = [c for c in frame.columns if c.startswith("rule:")]
    assert rules == [
        "rule:IF rsi IS oversold AND trend IS up THEN BUY",
        "rule:IF rsi IS overbought THEN SELL",
        "rule:IF trend IS down THEN SELL",
    ]
    # AND = min, weight 0.8 multiplies, one action's rules combine by max.
    both = frame[["membership:rsi.oversold", "membership:trend.up"]]
    assert (frame[rules[0]] == both.min(axis=1, skipna=False).fillna(0)).all()
    assert frame[rules[2]].to_numpy() == pytest.approx(
        0.8 * frame["membership:trend.down"].fillna(0).to_numpy()
    )
    assert (frame["strength:SELL"] == frame[rules[1:]].max(axis=1)).all()
    # The position held after bar t comes from the target decided at bar t-1.
    held = (frame["position"] > 0).astype(int).to_numpy()
    assert (held[1:] == frame["target"].to_numpy()[:-1]).all()
    entries = int(((frame["target"].diff() == 1) & (frame.index < frame.index[-1])).sum())
    assert entries == run["result"]["statistics"]["num_trades"] > 0

    # A SELL from the weighted trend rule, on a bar whose indicators are all warm.
    at = frame.index[(frame["action"] == "SELL") & (frame["rule:IF trend IS down THEN SELL"] > 0)][
        0
    ]
    explained = run_json(api, "strategy", "explain", "rsi_fuzzy", "--at", at.isoformat())
    strategy = load_strategy("rsi_fuzzy")
    bars = DataStore(local.data_home / "data").load(
        "EURUSD", "1h", at, at, warmup_bars=strategy.warmup_bars()
    )
    data = prepare_data(bars, at, at)
    features = compute_features(strategy, data.bars)
    memberships = fuzzy_memberships(strategy, features)
    assert explained["time"] == at.isoformat()
    assert explained["rsi.value"] == pytest.approx(features["rsi.value"][-1], rel=1e-12)
    assert explained["membership:trend.down"] == pytest.approx(memberships[("trend", "down")][-1])
    assert explained["rule:IF trend IS down THEN SELL"] == pytest.approx(
        0.8 * memberships[("trend", "down")][-1]
    )
    assert explained["action"] == "SELL" and explained["target"] == 0
    human = ktrdr("strategy", "explain", "rsi_fuzzy", "--at", at.isoformat(), url=api.base_url)
    assert human.returncode == 0, human.stderr
    assert "IF trend IS down THEN SELL" in human.stdout
    assert "action SELL → target flat (+0)" in human.stdout
