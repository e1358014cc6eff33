"""Backtests and data downloads as operations on real processes, checked against the
engine run directly on the same stored data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import DataStore
from ktrdr.engine.strategy import builtin_strategy_names, load_strategy
from ktrdr.engine.strategy.paths import strategy_document
from ktrdr.local_stack import LocalStack
from ktrdr.worker.runners.backtest import MAX_STORED_EQUITY_POINTS
from tests.support.stack import Api, StackFactory

SYMBOL = "EURUSD"
UPLOAD_LIMIT = 100_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Api]]:
    factory = StackFactory(tmp_path_factory.mktemp("backtests"))
    stack, api = factory.start(workers=2, env={"KTRDR_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT)})
    response = api.http.post(
        "/data/downloads/start",
        json={
            "symbol": SYMBOL,
            "timeframe": "1h",
            "provider": "synthetic",
            "bars": 4000,
            "seed": 3,
        },
    )
    assert response.status_code == 202, response.text
    done = api.wait_status(response.json()["id"], {"completed", "failed"}, 30)
    assert done["status"] == "completed", done["error"]
    yield stack, api
    factory.stop_all()


def engine_result(stack: LocalStack, name: str, **window: Any) -> dict[str, Any]:
    strategy = load_strategy(name)
    strategy = strategy.model_copy(
        update={"data": strategy.data.model_copy(update={"symbol": SYMBOL, "timeframe": "1h"})}
    )
    bars = DataStore(stack.data_home / "data").load(
        SYMBOL, "1h", window.get("start"), window.get("end"), warmup_bars=strategy.warmup_bars()
    )
    result = run_backtest(strategy, bars, capital=50_000.0, **window)
    payload = result.to_dict(max_equity_points=MAX_STORED_EQUITY_POINTS)
    payload["capital"] = 50_000.0
    payload["warnings"] = []
    payload["effective_strategy"] = strategy_document(strategy)
    return payload


# Model-driven examples need a trained model first: test_training_operations covers them.
RULE_STRATEGIES = [n for n in builtin_strategy_names() if load_strategy(n).decisions.model is None]


@pytest.mark.parametrize("name", RULE_STRATEGIES)
def test_example_strategy_through_api_equals_engine_run_directly(
    stack: tuple[LocalStack, Api], name: str
) -> None:
    local, api = stack
    # A Monday: synthetic FX bars keep FX hours, so a weekend day has no bar to start on.
    window = {"start": "2020-02-03T00:00:00+00:00", "end": "2020-05-01T00:00:00+00:00"}
    response = api.http.post(
        "/backtests/start",
        json={"strategy": name, "symbol": SYMBOL, "timeframe": "1h", "capital": 50_000, **window},
    )
    assert response.status_code == 202, response.text
    op = api.wait_status(response.json()["id"], {"completed", "failed"}, 60)
    assert op["status"] == "completed", op["error"]
    stored = api.http.get(f"/operations/{op['id']}/results").json()
    expected = json.loads(json.dumps(engine_result(local, name, **window)))
    tables = stored.pop("artifacts")
    assert stored == expected
    assert tables["trades"]["rows"] == len(expected["trades"])
    assert op["result"]["artifacts"] == tables, "the record holds references, not tables"
    assert "trades" not in op["result"] and "equity_curve" not in op["result"]
    assert stored["statistics"]["start"] == window["start"], "warm-up bars are not traded"
    trades = api.http.get(f"/operations/{op['id']}/results", params={"part": "trades"}).json()
    assert trades == expected["trades"]
    metrics = api.http.get(f"/operations/{op['id']}/metrics").json()["metrics"]
    assert metrics["num_trades"] == len(expected["trades"])


def test_backtest_reports_its_phases_as_progress(stack: tuple[LocalStack, Api]) -> None:
    _, api = stack
    op = api.http.post("/backtests/start", json={"strategy": "rsi_fuzzy", "symbol": SYMBOL}).json()
    done = api.wait_status(op["id"], {"completed"}, 60)
    assert done["progress"]["percent"] == 100
    assert done["progress"]["phase"] == "results"


def test_data_catalog_lists_the_synthetic_series(stack: tuple[LocalStack, Api]) -> None:
    _, api = stack
    data = api.http.get("/data").json()["data"]
    assert [(d["symbol"], d["timeframe"], d["rows"], d["source"]) for d in data] == [
        (SYMBOL, "1h", 4000, "synthetic")
    ]


def _reject(api: Api, body: dict[str, Any]) -> str:
    response = api.http.post("/backtests/start", json=body)
    assert response.status_code == 422, response.text
    return str(response.json()["detail"])


STRATEGY_WITH_TYPO = """
name: typo
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: fast, type: sma, params: {perod: 10}}
  - {id: slow, type: smaa, params: {period: 30}}
decisions:
  signals:
    - crossover: {fast: fast, slow: slow}
"""


def test_bad_backtests_are_rejected_before_queueing_with_the_fix(
    stack: tuple[LocalStack, Api],
) -> None:
    _, api = stack
    before = api.http.get("/operations", params={"type": "backtesting"}).json()["count"]
    detail = _reject(api, {"strategy": STRATEGY_WITH_TYPO})
    assert "did you mean 'period'" in detail and "did you mean 'sma'" in detail
    detail = _reject(api, {"strategy": "sma_crossover", "symbol": "NOPE"})
    assert "no data for NOPE 1h" in detail and "ktrdr data download NOPE" in detail
    detail = _reject(api, {"strategy": "sma_crossover", "start": "2021-01-02", "end": "2021-01-01"})
    assert "empty date range" in detail
    detail = _reject(api, {"strategy": "sma_crossover", "start": "2031-01-01", "end": "2031-02-01"})
    assert "stored data covers" in detail
    detail = _reject(api, {"strategy": "sma_crosover"})
    assert "unknown strategy 'sma_crosover'" in detail and "sma_crossover" in detail
    after = api.http.get("/operations", params={"type": "backtesting"}).json()["count"]
    assert after == before, "nothing was queued"


def _upload(api: Api, data: bytes) -> dict[str, Any]:
    response = api.http.post("/data/uploads", content=data, headers={"content-type": "text/csv"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_bad_csv_import_is_rejected_naming_rows(stack: tuple[LocalStack, Api]) -> None:
    _, api = stack
    csv = (
        "date,open,high,low,close,volume\n"
        "2024-01-02,1,2,0.5,1.5,10\n"
        "2024-01-01,1,2,0.5,1.5,10\n"
        "2024-01-01,1,2,0.5,1.5,10\n"
    )
    upload = _upload(api, csv.encode())
    response = api.http.post(
        "/data/downloads/start",
        json={"symbol": "CSVX", "timeframe": "1d", "provider": "csv",
              "upload_key": upload["key"], "upload_sha256": upload["sha256"]},
    )  # fmt: skip
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "row 3" in detail and "row 4" in detail
    assert "sort" in detail.lower() and "duplicate" in detail.lower()


def test_csv_import_parameters_hold_a_reference_and_checksum(
    stack: tuple[LocalStack, Api],
) -> None:
    local, api = stack
    rows = [f"2023-03-{d:02d},{10 + d},{12 + d},{9 + d},{11 + d},{100 * d}" for d in range(1, 29)]
    data = ("\ufeffDate,Open,High,Low,Close,Volume\n" + "\n".join(rows) + "\n").encode()
    upload = _upload(api, data)
    assert upload == {
        "key": f"uploads/{hashlib.sha256(data).hexdigest()}.csv",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    body = {"symbol": "REFX", "timeframe": "1d", "provider": "csv",
            "upload_key": upload["key"], "upload_sha256": upload["sha256"]}  # fmt: skip
    op = api.http.post("/data/downloads/start", json=body).json()
    done = api.wait_status(op["id"], {"completed", "failed"}, 30)
    assert done["status"] == "completed", done["error"]
    assert done["params"]["upload_key"] == upload["key"]
    assert done["params"]["upload_sha256"] == upload["sha256"]
    assert "2023-03-05" not in json.dumps(done), "the file's rows are not in the record"
    bars = DataStore(local.data_home / "data").load("REFX", "1d", None, None)
    assert len(bars) == 28 and bars["close"].iloc[-1] == 39.0 and bars["volume"].iloc[0] == 100


def test_uploads_are_bounded_and_references_checked(stack: tuple[LocalStack, Api]) -> None:
    local, api = stack
    too_big = api.http.post("/data/uploads", content=b"x" * (UPLOAD_LIMIT + 1))
    assert too_big.status_code == 413 and "KTRDR_MAX_UPLOAD_BYTES" in too_big.json()["detail"]
    assert api.http.post("/data/uploads", content=b"").status_code == 422
    base = {"symbol": "REFY", "timeframe": "1d", "provider": "csv"}
    inline = api.http.post("/data/downloads/start", json={**base, "csv_text": "date,open\n"})
    assert inline.status_code == 422 and "POST /api/v1/data/uploads" in inline.text
    missing = api.http.post(
        "/data/downloads/start",
        json={**base, "upload_key": f"uploads/{'0' * 64}.csv", "upload_sha256": "0" * 64},
    )
    assert missing.status_code == 422 and "no upload" in missing.json()["detail"]
    upload = _upload(api, b"date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n")
    (local.data_home / "artifacts" / upload["key"]).write_bytes(b"tampered")
    tampered = api.http.post(
        "/data/downloads/start",
        json={**base, "upload_key": upload["key"], "upload_sha256": upload["sha256"]},
    )
    assert tampered.status_code == 422 and "checksum" in tampered.json()["detail"]


def test_cli_backtest_errors_are_one_line_with_the_fix(
    stack: tuple[LocalStack, Api], tmp_path: Path
) -> None:
    local, _ = stack
    strategy_file = tmp_path / "typo.yaml"
    strategy_file.write_text(STRATEGY_WITH_TYPO)
    result = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "backtest", "run", str(strategy_file),
         "--url", local.api_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    assert "Traceback" not in result.stderr and "did you mean 'period'" in result.stderr


def test_cli_backtest_run_shows_results_and_writes_html(
    stack: tuple[LocalStack, Api], tmp_path: Path
) -> None:
    local, _ = stack
    run = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "backtest", "run", "sma_crossover",
         "--symbol", SYMBOL, "--url", local.api_url, "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    op = json.loads(run.stdout)
    report = tmp_path / "report.html"
    show = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "backtest", "show", op["id"],
         "--html", str(report), "--url", local.api_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert "Sharpe" in show.stdout and "equity" in show.stdout
    page = report.read_text()
    assert "Plotly.newPlot" in page and "sma_crossover on EURUSD 1h" in page
    assert f"{op['result']['statistics']['num_trades']}" in page
    # `ops list` on a narrow terminal: what each operation ran, and ids never cut.
    listed = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "ops", "list", "--type", "backtesting",
         "--url", local.api_url],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if op["id"] in line)
    stats = op["result"]["statistics"]
    assert "sma_crossover" in listed.stdout and "EURUSD" in listed.stdout
    assert f"{stats['total_return_pct']:+.2f}%" in listed.stdout
    assert row.count(op["id"]) == 1


def test_cli_data_import_list_and_show(stack: tuple[LocalStack, Api], tmp_path: Path) -> None:
    local, _ = stack
    csv = tmp_path / "daily.csv"
    rows = ["Date,Open,High,Low,Close,Volume"] + [
        f"2024-01-{day:02d},{100 + day},{102 + day},{99 + day},{101 + day},1000"
        for day in range(1, 21)
    ]
    csv.write_text("\n".join(rows) + "\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ktrdr.cli.main", *args, "--url", local.api_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    imported = cli("data", "import", str(csv), "--symbol", "csvx", "--timeframe", "1d")
    assert imported.returncode == 0, imported.stderr
    assert "CSVX 1d: 20 bars" in imported.stdout
    listed = json.loads(cli("data", "list", "--json").stdout)
    assert ("CSVX", "1d", 20, "csv") in {
        (d["symbol"], d["timeframe"], d["rows"], d["source"]) for d in listed["data"]
    }
    shown = json.loads(cli("data", "show", "CSVX", "--timeframe", "1d", "--json").stdout)
    assert shown["first"].startswith("2024-01-01") and shown["last"].startswith("2024-01-20")
    missing = cli("data", "show", "NOPE")
    assert missing.returncode == 3 and "ktrdr data download NOPE" in missing.stdout


def test_cli_import_of_bad_csv_names_rows_and_exits_three(
    stack: tuple[LocalStack, Api], tmp_path: Path
) -> None:
    local, _ = stack
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-01,1,0.8,0.5,1.5,10\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", "data", "import", str(bad), "--symbol", "BAD",
         "--url", local.api_url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "row 3" in result.stderr and "CSV rejected" in result.stderr
