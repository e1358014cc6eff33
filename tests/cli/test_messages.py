"""What `ktrdr` says when things go wrong, run as a subprocess against the real stack:
messages printed literally, no internal prefixes, busy ports, Ctrl-C while following,
--version, --url before the subcommand, offline API docs."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import connected_to, ktrdr
from tests.support.stack import Api, StackFactory, free_port, wait_for

BAD_POINTS = """
name: bad_points
data: {symbol: EURUSD, timeframe: 1h}
indicators:
  - {id: rsi, type: rsi, params: {period: 14}}
fuzzy_sets:
  rsi:
    input: rsi
    sets:
      low: {shape: left_shoulder, points: [30]}
decisions:
  fuzzy_rules:
    rules: ["IF rsi IS low THEN BUY"]
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    factory = StackFactory(tmp_path_factory.mktemp("messages"))
    _, api = factory.start(workers=1)
    op = api.http.post(
        "/data/downloads/start",
        json={"symbol": "EURUSD", "timeframe": "1h", "provider": "synthetic", "bars": 600},
    ).json()
    api.wait_status(op["id"], {"completed"}, 60)
    yield api
    factory.stop_all()


@pytest.fixture
def ctrl_c_reaches_children() -> Iterator[None]:
    """A SIGINT sent to a child becomes KeyboardInterrupt, as in a terminal (a test run in
    the background of a shell inherits SIGINT as ignored; a Python handler is reset at exec)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_api_errors_keep_their_square_brackets(api: Api, tmp_path: Path) -> None:
    strategy = tmp_path / "bad_points.yaml"
    strategy.write_text(BAD_POINTS)
    result = ktrdr("backtest", "run", str(strategy), url=api.base_url)
    assert result.returncode == 3
    assert "[a, b] with a <= b" in result.stderr
    # An operation's error (the worker's text), shown by the follow that ends the command.
    if importlib.util.find_spec("yfinance") is None:
        result = ktrdr(
            "data", "download", "GOOG", "--provider", "yahoo", "--timeframe", "1d",
            "--start", "2020-01-01", "--end", "2020-02-01", url=api.base_url,
        )  # fmt: skip
        assert result.returncode == 1
        assert "pip install 'ktrdr[download]'" in result.stdout
    # A 404 whose text echoes what was asked.
    result = ktrdr("ops", "show", "op_[x]", url=api.base_url)
    assert result.returncode == 3 and "error: no operation 'op_[x]'" in result.stderr


def test_local_errors_keep_their_square_brackets(tmp_path: Path) -> None:
    # A settings error (ValidationError path) and a ValueError path, both with brackets.
    result = ktrdr("demo", "--api-port", str(free_port()), env={"KTRDR_ENVIRONMENT": "prod[eu]"})
    assert result.returncode != 0
    assert "KTRDR_ENVIRONMENT='prod[eu]'" in result.stderr.replace("\n", "")


def test_refusals_have_no_internal_prefix_and_timeframes_suggest_case(api: Api) -> None:
    result = ktrdr("backtest", "run", "sma_crosover", url=api.base_url)
    assert result.returncode == 3
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("error: unknown strategy 'sma_crosover': give the YAML")
    assert "422" not in result.stderr and "Value error" not in result.stderr
    assert "invalid request" not in result.stderr
    for command in (
        ["backtest", "run", "sma_crossover", "--timeframe", "1D"],
        ["data", "download", "EURUSD", "--timeframe", "1D"],
    ):
        result = ktrdr(*command, url=api.base_url)
        assert result.returncode == 3, result.stderr
        assert result.stderr.startswith("error: unknown timeframe '1D' (did you mean '1d'?)")
        assert "validation error for" not in result.stderr


def test_up_on_a_busy_port_exits_before_saying_it_started(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = ktrdr(
            "up", "--workers", "1", "--api-port", str(free_port()), "--worker-port", str(port),
            env={"KTRDR_DATA_HOME": str(tmp_path)},
        )  # fmt: skip
        demo = ktrdr("demo", "--api-port", str(port), env={"KTRDR_DATA_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert f"port {port} is in use" in result.stderr
    assert "starting" not in result.stdout and result.stdout == ""
    assert demo.returncode == 2 and f"port {port} is in use" in demo.stderr
    # The demo said where its data would go: under KTRDR_DATA_HOME, before anything ran.
    assert not (tmp_path / "demo").exists()


@pytest.mark.usefixtures("ctrl_c_reaches_children")
@pytest.mark.parametrize("cancel", [False, True])
def test_ctrl_c_while_following_says_what_happened(api: Api, cancel: bool) -> None:
    op = api.start_diagnostic(steps=600, step_ms=100)
    api.wait_status(op["id"], {"running"}, 30)
    port = int(api.base_url.rsplit(":", 1)[1])
    command = [sys.executable, "-m", "ktrdr.cli.main", "ops", "follow", op["id"], "--url",
               api.base_url, *(["--cancel-on-interrupt"] if cancel else [])]  # fmt: skip
    follow = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: connected_to(follow.pid, port), 30, "the CLI to ask the API")
        follow.send_signal(signal.SIGINT)
        _out, err = follow.communicate(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.communicate()
    assert follow.returncode == 130, err
    assert "Traceback" not in err
    if cancel:
        assert f"stopped following; {op['id']} is cancelled" in err
        assert api.op(op["id"])["status"] == "cancelled"
    else:
        assert (
            f"stopped following; {op['id']} is still running — "
            f"`ktrdr ops cancel {op['id']}` to stop it"
        ) in err
        assert api.op(op["id"])["status"] == "running"
        api.http.post(f"/operations/{op['id']}/cancel")


def test_version_and_url_before_the_subcommand(api: Api) -> None:
    from ktrdr import __version__

    result = ktrdr("--version")
    assert result.returncode == 0 and result.stdout == f"ktrdr {__version__}\n"
    result = ktrdr("--url", api.base_url, "workers", "--json")
    assert result.returncode == 0, result.stderr
    assert '"count": 1' in result.stdout


def test_api_docs_are_served_from_the_package(api: Api) -> None:
    page = httpx.get(f"{api.base_url}/docs", timeout=10)
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "/docs-assets/swagger-ui-bundle.js" in page.text
    js = httpx.get(f"{api.base_url}/docs-assets/swagger-ui-bundle.js", timeout=10)
    css = httpx.get(f"{api.base_url}/docs-assets/swagger-ui.css", timeout=10)
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text
    assert css.status_code == 200 and ".swagger-ui" in css.text


def test_csv_import_detects_the_format_infers_the_timeframe_and_counts_market_gaps(
    api: Api, tmp_path: Path
) -> None:
    from tests.engine.test_csv_calendar import yahoo_like_csv

    csv = tmp_path / "goog.csv"
    csv.write_text(yahoo_like_csv(";", ","))  # a European spreadsheet's export
    imported = ktrdr("data", "import", str(csv), "--symbol", "GOOG", url=api.base_url)
    assert imported.returncode == 0, imported.stderr
    out = " ".join(imported.stdout.split())
    assert "GOOG 1d: 20 bars" in out  # 1d from the timestamps
    assert "1 gap(s) against the stock calendar" in out  # the 10th, not weekends/holidays
    assert "'Adj Close' is present and not used" in out and "--adjusted" in out
    wrong = ktrdr("data", "import", str(csv), "--symbol", "GOOG", "--timeframe", "1h",
                  url=api.base_url)  # fmt: skip
    assert wrong.returncode == 3
    assert "its bars are 1d apart (timeframe 1d), but the timeframe given is 1h" in wrong.stderr
    adjusted = ktrdr("data", "import", str(csv), "--symbol", "GOOGA", "--adjusted",
                     "--json", url=api.base_url)  # fmt: skip
    assert adjusted.returncode == 0, adjusted.stderr
    assert "'Adj Close' (adjusted)" in adjusted.stdout
    listed = ktrdr("data", "list", "--json", url=api.base_url)
    by_key = {(d["symbol"], d["timeframe"]): d for d in json.loads(listed.stdout)["data"]}
    assert (by_key["GOOG", "1d"]["market"], by_key["GOOG", "1d"]["gaps"]) == ("stock", 1)
    # Synthetic FX bars keep FX hours: no weekend bars, so no gaps against the FX week.
    assert (by_key["EURUSD", "1h"]["market"], by_key["EURUSD", "1h"]["gaps"]) == ("fx", 0)
