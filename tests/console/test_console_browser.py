"""The console in real headless Chromium against a real local stack (API + 2 workers).

One browser and one stack for the module; each test opens its own page, ends with no
console error, no failed request and every request on the API's own origin (offline),
and writes a screenshot of what it saw to test-artifacts/console/.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from ktrdr.engine.strategy.loader import builtin_strategy_text
from ktrdr.local_stack import LocalStack
from ktrdr.worker.runners.backtest import PHASES as BACKTEST_PHASES
from tests.console.browser import WatchedPage, launch_browser
from tests.support.campaign_strategies import SWEEP_STRATEGY
from tests.support.stack import Api, StackFactory, wait_for

pytestmark = pytest.mark.integration


class ConsoleStack(NamedTuple):
    local: LocalStack
    api: Api
    training_id: str | None  # a training run started with the stack (PyTorch installed)
    submitted: dict[str, str]  # operations one test started for a later one


TORCH = importlib.util.find_spec("torch") is not None
TRAINING = {"strategy": "fuzzy_nn", "symbol": "EURUSD", "epochs": 3,
            "start": "2020-02-01T00:00:00+00:00", "end": "2020-06-30T00:00:00+00:00"}  # fmt: skip
XSS_NAME = "<script>window.__xss = 1</script><img src=x onerror='window.__xss = 2'>"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    factory = StackFactory(tmp_path_factory.mktemp("console"))
    try:
        # 6 s, not the 2 s of FAST_LIVENESS: on a loaded machine a worker importing
        # PyTorch and building features can miss 2 s of heartbeats and be marked lost.
        local, api = factory.start(workers=2, env={"KTRDR_HEARTBEAT_TIMEOUT_S": "6"})
        download = api.http.post(
            "/data/downloads/start",
            json={"symbol": "EURUSD", "timeframe": "1h", "provider": "synthetic",
                  "bars": 6000, "seed": 7},
        )  # fmt: skip
        assert download.status_code == 202, download.text
        training_id = None
        api.wait_status(download.json()["id"], {"completed"}, 60)
        if TORCH:
            # Started now, so it trains on one worker while the first tests use the other.
            training = api.http.post("/training/start", json=TRAINING)
            assert training.status_code == 202, training.text
            training_id = training.json()["id"]
        yield ConsoleStack(local, api, training_id, {})
    finally:
        factory.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_browser()


@pytest.fixture
def watched(browser: Any, stack: ConsoleStack) -> Iterator[WatchedPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    # Generous: on a loaded 2-core machine parsing Plotly (4.8 MB) alone can take many seconds.
    context.set_default_timeout(60_000)
    page = WatchedPage(context.new_page(), stack[0].api_url)
    page.attach()
    try:
        yield page
    finally:
        context.close()


def test_overview_shows_the_registered_workers(watched: WatchedPage, stack: ConsoleStack) -> None:
    api = stack.api
    workers = api.workers()
    assert len(workers) == 2
    watched.goto("/")
    shown = watched.page.locator("#overview-workers [data-worker]")
    assert sorted(shown.evaluate_all("els => els.map(e => e.dataset.worker)")) == sorted(
        w["id"] for w in workers
    )
    kinds = watched.page.locator("#workers-by-kind li[data-kind='backtesting'] b")
    assert kinds.inner_text() == "2"
    assert watched.page.locator("#card-workers .card-value").inner_text() == "2"
    watched.screenshot("overview")
    watched.assert_clean()


def test_backtest_from_the_form_appears_and_reaches_100_percent(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    page = watched.page
    watched.goto("/backtests/new")
    page.select_option("#example", "sma_crossover")
    page.select_option("#series", "EURUSD|1h")
    page.fill("#start", "2020-02-01")
    page.fill("#capital", "50000")
    page.fill("#commission", "0.0005")
    watched.screenshot("start-backtest")
    page.click("#submit-backtest")
    page.wait_for_url(re.compile(r"/operations/op_backtesting_"))
    op_id = page.url.rsplit("/", 1)[1]
    op = api.op(op_id)
    assert op["params"]["capital"] == 50000 and op["params"]["commission"] == 0.0005
    assert op["params"]["start"].startswith("2020-02-01T00:00:00")

    # The operations list shows it, and its progress bar reaches 100 % by live updates.
    watched.goto("/operations")
    bar = page.locator(f"tr[data-op='{op_id}'] [role=progressbar]")
    bar.wait_for()
    page.wait_for_function(
        "id => document.querySelector(`tr[data-op='${id}'] [role=progressbar]`)"
        "?.getAttribute('aria-valuenow') === '100.0'",
        arg=op_id, timeout=100_000,  # a loaded machine compiles the kernels slowly
    )  # fmt: skip
    assert page.locator(f"tr[data-op='{op_id}'] .badge").inner_text() == "completed"
    watched.screenshot("operations")
    watched.assert_clean()
    stack.submitted["form"] = op_id


def test_report_shows_the_apis_final_equity_trades_and_timeline(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    page = watched.page
    if "form" not in stack.submitted:
        pytest.skip("needs the backtest submitted by the form test (which failed)")
    op_id = stack.submitted["form"]
    # The report: same final equity and trade count as the API; every trade in the table.
    stats = api.http.get(f"/operations/{op_id}/results", params={"part": "statistics"}).json()
    trades = api.http.get(f"/operations/{op_id}/results", params={"part": "trades"}).json()
    assert len(trades) == stats["num_trades"] > 0
    watched.goto(f"/operations/{op_id}")
    assert float(page.locator("#final-equity").get_attribute("data-value")) == stats["final_equity"]
    assert page.locator("#final-equity").inner_text() == f"{stats['final_equity']:,.2f}"
    assert page.locator("#trade-count").inner_text() == f"{len(trades):,}"
    rows = page.locator("#trades-table tbody tr")
    page.wait_for_function(
        "n => document.querySelectorAll('#trades-table tbody tr').length === n", arg=len(trades)
    )
    page.locator("#equity-chart .main-svg").first.wait_for()
    page.locator("#price-chart .main-svg").first.wait_for()
    # Sorting by net P&L puts the worst trade first.
    page.click("#trades-table th[data-key='net_pnl']")
    worst = min(trades, key=lambda t: t["net_pnl"])
    assert rows.first.locator("td").nth(6).inner_text() == f"{worst['net_pnl']:.2f}"
    with page.expect_download() as download:
        page.click("#export-csv")
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(exported) == len(trades)
    assert [float(r["net_pnl"]) for r in exported] == [t["net_pnl"] for t in trades]
    assert "attempt" in page.locator("#timeline").inner_text().lower()
    # Phases as the backend heard of them: in order, each with a duration (the worker sends
    # progress at most every 0.25 s, so a shorter phase may be folded into the next).
    phases = [p for p in page.locator("#timeline .step-phase .step-label").all_inner_texts()]
    assert phases and phases == [p for p in BACKTEST_PHASES if p in phases], phases
    assert page.locator("#timeline .step-completed").count() == 1
    watched.screenshot("backtest-report")
    watched.assert_clean()


def test_form_shows_the_apis_own_validation_message(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    watched.expected_statuses.add(422)
    bad = "name: broken\ndata: {symbol: EURUSD, timeframe: 1h}\nindicatorz: []\n"
    expected = api.http.post("/backtests/start", json={"strategy": bad, "capital": 100000})
    assert expected.status_code == 422
    page = watched.page
    watched.goto("/backtests/new")
    page.check("input[name=source][value=yaml]")
    page.fill("#yaml", bad)
    page.click("#submit-backtest")
    error = page.locator("#form-error")
    error.wait_for(state="visible")
    assert error.inner_text() == expected.json()["detail"]
    watched.screenshot("start-backtest-error")
    watched.assert_clean()


def test_cancelling_from_the_page_cancels_the_operation(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    op = api.start_diagnostic(steps=600, step_ms=50, label="to cancel")
    api.wait_status(op["id"], {"running"}, 30)
    page = watched.page
    watched.goto(f"/operations/{op['id']}")
    # The key typed in the header box goes with the action (no key is configured here, so
    # the API accepts any; it is the header the API's user keys are read from).
    page.fill("#apikey", "a-user-key")
    page.click("#apikey-form button")
    assert page.locator("#apikey-state").inner_text() == "set for this tab"
    button = page.locator(f"button[data-cancel='{op['id']}']")
    button.click()
    assert button.inner_text() == "Confirm cancel"  # one click alone does nothing
    assert api.op(op["id"])["status"] == "running"
    with page.expect_request(lambda r: r.url.endswith("/cancel")) as sent:
        button.click()
    assert sent.value.headers["authorization"] == "Bearer a-user-key"
    final = api.wait_status(op["id"], {"cancelled"}, 30)
    assert final["status_reason"] == "cancelled by user"
    # The live fragment sees the end and reloads the page once: the badge says so.
    page.locator("h1 .badge.status-cancelled").wait_for()
    watched.screenshot("operation-cancelled")
    watched.assert_clean()


def test_user_text_renders_as_text(watched: WatchedPage, stack: ConsoleStack) -> None:
    api = stack.api
    # A strategy named like a script, and an operation that fails with an error quoting it
    # (a diagnostic asked to fail quotes its label in the error).
    failing = api.http.post(
        "/diagnostics/start", json={"steps": 1, "step_ms": 0, "fail_at_step": 0, "label": XSS_NAME}
    )
    assert failing.status_code == 202, failing.text
    text = builtin_strategy_text("sma_crossover").replace(
        "name: sma_crossover", f'name: "{XSS_NAME}"', 1
    )
    named = api.http.post("/backtests/start", json={"strategy": text, "symbol": "EURUSD"})
    assert named.status_code == 202, named.text
    # Generous: the worker compiles this strategy's indicators on first use.
    failed = api.wait_status(failing.json()["id"], {"failed"}, 100)
    assert "<" in failed["error"], failed["error"]
    page = watched.page
    watched.goto("/operations")
    row = page.locator(f"tr[data-op='{named.json()['id']}'] .strategy")
    assert row.inner_text() == XSS_NAME
    watched.goto(f"/operations/{failed['id']}")
    assert page.locator("#error").inner_text() == failed["error"]
    assert page.locator("#error img, #error script, #summary img, .strategy img").count() == 0
    assert page.evaluate("window.__xss") is None
    watched.screenshot("operation-failed-xss")
    watched.assert_clean()


@pytest.mark.skipif(not TORCH, reason="PyTorch (the ml extra) is not installed")
def test_training_report_shows_epochs_confusion_and_baseline(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    assert stack.training_id is not None
    op = api.wait_status(stack.training_id, {"completed", "failed"}, 90)
    assert op["status"] == "completed", op["error"]
    evaluation = op["result"]["evaluation"]
    page = watched.page
    watched.goto(f"/operations/{op['id']}")
    assert page.locator("#test-accuracy").inner_text() == f"{evaluation['accuracy']:.1%}"
    assert (
        page.locator("#baseline-accuracy").inner_text() == f"{evaluation['baseline_accuracy']:.1%}"
    )
    cells = page.locator("#confusion tbody td").all_inner_texts()
    matrix = evaluation["confusion_matrix"]["rows_true_columns_predicted"]
    assert [int(c) for c in cells] == [v for row in matrix for v in row]
    page.locator("#epochs-chart .main-svg").first.wait_for()
    # The chart drew the run's history artifact, one point per epoch on each trace.
    epochs = op["result"]["metrics"]["epochs_run"]
    assert op["result"]["artifacts"]["history"]["rows"] == epochs
    points = page.evaluate(
        "Array.from(document.getElementById('epochs-chart').data, t => t.x.length)"
    )
    assert points == [epochs, epochs, epochs]
    watched.screenshot("training-report")
    watched.assert_clean()


def _campaign(api: Api, route: str, **body: Any) -> dict[str, Any]:
    response = api.http.post(route, json={"strategy": SWEEP_STRATEGY, "chunk_size": 4, **body})
    assert response.status_code == 202, response.text
    done = api.wait_status(response.json()["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done["error"]
    return done


def test_sweep_report_shows_the_apis_best_heatmap_and_top_table(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    op = _campaign(api, "/sweeps/start")
    best = op["result"]["best"]
    ranked = api.http.get(f"/operations/{op['id']}/sweep-results", params={"limit": 100}).json()
    page = watched.page
    watched.goto(f"/operations/{op['id']}")
    # 4 fast periods x 3 slow, minus the 2 that break fast < slow (12 with 12 and 16).
    assert ranked["count"] == 10
    assert page.locator("#sweep-evaluated").get_attribute("data-value") == "10"
    assert (
        float(page.locator("#sweep-best").get_attribute("data-value") or "nan") == best["objective"]
    )
    best_params = page.locator("#sweep-best-params").inner_text()
    for path, value in best["params"].items():
        assert f"{path} = {value}" in best_params
    # The heatmap has a cell per (fast, slow) pair of the grid; the 2 infeasible are grey.
    cells = page.locator("#sweep-heatmap svg rect")
    assert cells.count() == 12
    assert page.locator("#sweep-heatmap svg rect[fill='#ddd']").count() == 2
    assert page.locator("#sweep-sensitivity svg").count() == 2
    # The top table lists the API's ranking, best first.
    top = page.locator("#sweep-top tr").all_inner_texts()[1:]
    shown = [int(line.split()[0]) for line in top]
    assert shown == [r["combination"] for r in ranked["data"]][: len(shown)]
    assert len(shown) == 10
    assert page.locator("#sweep-diagnostics th").count() == len(op["result"]["diagnostics"])
    watched.screenshot("sweep-report")
    watched.assert_clean()


def test_walkforward_report_shows_every_window_and_the_stitched_curve(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    api = stack.api
    op = _campaign(api, "/walkforwards/start", train_bars=2000, test_bars=1000)
    windows = op["result"]["windows"]
    page = watched.page
    watched.goto(f"/operations/{op['id']}")
    assert page.locator("#wf-windows").inner_text() == str(len(windows))
    rows = page.locator("#wf-table tr").all_inner_texts()[1:]
    assert [int(r.split()[0]) for r in rows] == [w["window"] for w in windows]
    # One dashed line per window start on the stitched out-of-sample curve.
    assert page.locator("#wf-equity svg line").count() == len(windows)
    assert page.locator("#wf-equity svg polyline").count() == 1
    stitched = op["result"]["stitched"]["total_return_pct"]
    assert page.locator("#wf-return").inner_text() == f"{stitched:.2f}%"
    efficiency = op["result"]["walkforward_efficiency"]
    in_sample = np.mean([w["in_sample_objective"] for w in windows])
    shown = page.locator("#wf-efficiency").inner_text()
    if efficiency is None and in_sample <= 0:  # the ratio is undefined: the card says why
        assert shown == "n/a (the in-sample objective is not positive: no edge to carry over)"
    else:
        assert shown == f"{efficiency:.3f}"
    watched.screenshot("walkforward-report")
    watched.assert_clean()


def test_a_killed_worker_shows_lost_and_the_requeue_as_a_second_attempt(
    watched: WatchedPage, stack: ConsoleStack
) -> None:
    local, api = stack.local, stack.api

    def idle() -> bool:
        busy = api.http.get("/operations", params={"status": ["pending", "running"]})
        return busy.json()["count"] == 0

    wait_for(idle, 90, "earlier tests' operations to end (a worker must be free)", 0.2)
    op = api.start_diagnostic(steps=400, step_ms=50, label="survives a kill")
    running = api.wait_status(op["id"], {"running"}, 30)
    first = running["worker_id"]
    victim = next(w for w in api.workers() if w["id"] == first)
    next(p for p in local.workers if p.url == victim["url"]).kill()

    def second_attempt() -> dict[str, Any] | None:
        now = api.op(op["id"])
        return now if now["attempt"] == 2 and now["status"] == "running" else None

    again = wait_for(second_attempt, 30, "the re-queued operation to run again")
    assert again["worker_id"] != first
    page = watched.page
    watched.goto("/workers")
    row = page.locator(f"tr[data-worker='{first}']")
    assert row.get_attribute("data-state") == "lost"
    # Lost by silence (no heartbeat) or by a refused dispatch, whichever came first; the
    # reason names the worker either way.
    reason = row.locator("td").last.inner_text()
    assert first in reason and ("no heartbeat" in reason or "failed" in reason), reason
    watched.screenshot("workers-lost")
    watched.goto(f"/operations/{op['id']}")
    first_attempt = page.locator("#timeline [data-attempt='1']")
    assert first in first_attempt.locator("h3").inner_text()
    requeued = first_attempt.locator(".step-requeued .step-label").inner_text()
    assert requeued.startswith("re-queued") and first in requeued, requeued
    second = page.locator("#timeline [data-attempt='2']")
    assert again["worker_id"] in second.locator("h3").inner_text()
    watched.screenshot("operation-second-attempt")
    api.http.post(f"/operations/{op['id']}/cancel")
    watched.assert_clean()
