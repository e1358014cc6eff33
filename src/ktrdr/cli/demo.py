"""`ktrdr demo`: the README's main job on the embedded default (local processes, SQLite).

Starts the API and workers, generates synthetic EURUSD 1h bars (named synthetic: this is
not market data) through a data_download operation, backtests the packaged SMA(10)/SMA(30)
crossover through a backtesting operation, shows the results and stops everything.
"""

from __future__ import annotations

from ktrdr.cli import ops
from ktrdr.cli.backtest import full_result, html_report, show_result
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console
from ktrdr.cli.servers import refuse_busy_ports
from ktrdr.config import CliSettings
from ktrdr.local_stack import LocalStack

DEMO_SYMBOL = "EURUSD"
DEMO_TIMEFRAME = "1h"
DEMO_STRATEGY = "sma_crossover"
# What an FX trade costs at a tight broker: 0.2 bp commission and 0.1 bp slippage per side
# (the strategy file's stock-like 10 bp would burn most of the capital over 20,000 bars).
DEMO_COMMISSION = 0.00002
DEMO_SLIPPAGE = 0.00001


def run_demo(*, workers: int, api_port: int, worker_port: int) -> int:
    # KTRDR_DATA_HOME (default ~/.ktrdr) holds the demo's own home, as the README says.
    home = CliSettings().data_home / "demo"
    refuse_busy_ports([api_port, *(worker_port + i for i in range(workers))])
    stack = LocalStack(
        data_home=home,
        api_port=api_port,
        worker_ports=[worker_port + i for i in range(workers)],
    )
    console.print(f"starting the local stack: API :{api_port}, {workers} workers, data in {home}")
    try:
        stack.start()
        client = ApiClient(stack.api_url)
        console.print(
            f"1/2 generating SYNTHETIC {DEMO_SYMBOL} {DEMO_TIMEFRAME} bars (not market data)"
        )
        download = client.post(
            "/data/downloads/start",
            {"symbol": DEMO_SYMBOL, "timeframe": DEMO_TIMEFRAME, "provider": "synthetic",
             "bars": 20_000, "seed": 7},
        )  # fmt: skip
        if ops.follow(client, download["id"])["status"] != "completed":
            return ops.exit_code_for(client.get(f"/operations/{download['id']}"))
        console.print(
            f"2/2 backtesting the {DEMO_STRATEGY} example strategy with FX-like costs "
            f"({DEMO_COMMISSION * 1e4:g} bp commission, {DEMO_SLIPPAGE * 1e4:g} bp slippage)"
        )
        console.print(
            "    the bars are a random walk: no strategy should win on them, so read the "
            "result as a demonstration of the platform, not of the strategy"
        )
        op = client.post(
            "/backtests/start",
            {"strategy": DEMO_STRATEGY, "symbol": DEMO_SYMBOL, "commission": DEMO_COMMISSION,
             "slippage": DEMO_SLIPPAGE},
        )  # fmt: skip
        final = ops.follow(client, op["id"])
        if final["status"] == "completed":
            result = full_result(client, final)
            show_result(final["id"], result, trades=10, hint=False)
            report = home / f"report-{final['id']}.html"
            report.write_text(html_report(final["id"], result))
            console.print(f"HTML report with the equity curve: {report}")
            console.print("[dim]`ktrdr up` keeps a stack running for your own backtests[/]")
        console.print(
            f"web console: run `KTRDR_DATA_HOME={home} ktrdr up` and open {stack.api_url}/ "
            f"(this backtest: {stack.api_url}/operations/{final['id']})"
        )
        return ops.exit_code_for(final)
    finally:
        console.print("stopping the local stack")
        stack.stop()
