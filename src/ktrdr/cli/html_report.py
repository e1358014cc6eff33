"""The HTML backtest report: one self-contained, offline file with interactive Plotly charts
(the plotly.js that ships in the ``plotly`` package is inlined, nothing is fetched).

Charts on dated axes, zoomable and linked: equity with the buy-and-hold benchmark, the
drawdown (underwater) curve, the price with entry and exit markers, and a rolling Sharpe
ratio; then monthly/yearly returns, the statistics and the trade list.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

from ktrdr.cli.report import STAT_ROWS, model_line, run_title, symbol_columns
from ktrdr.reports import fmt

MAX_TRADE_ROWS = 1000
# Rolling Sharpe over this share of the curve's points (at least 20 of them).
ROLLING_SHARE = 0.1
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{padding:2px 10px;
border-bottom:1px solid #ddd;text-align:right}th{text-align:left}.warn{background:#fff3cd;
padding:0.6em 1em;border-left:4px solid #e0a800}.pos{color:#137333}.neg{color:#b3261e}"""


def equity_frame(result: dict[str, Any]) -> pd.DataFrame:
    """The stored equity curve as a frame on a UTC DatetimeIndex (equity, close)."""
    points = result["equity_curve"]
    frame = pd.DataFrame(
        {
            "equity": [p.get("equity") for p in points],
            "close": [p.get("close") for p in points],
        },
        index=pd.DatetimeIndex([pd.Timestamp(p["timestamp"]) for p in points], name="time"),
        dtype=float,
    )
    return frame


def drawdown_pct(equity: pd.Series) -> pd.Series:
    """Percent below the running peak (0 at a new high, negative under water)."""
    return (equity / equity.cummax() - 1.0) * 100.0


def rolling_sharpe(equity: pd.Series) -> pd.Series:
    """Annualised Sharpe over a rolling window of the curve's own points."""
    returns = equity.pct_change()
    window = max(20, int(len(equity) * ROLLING_SHARE))
    span_years = (equity.index[-1] - equity.index[0]).total_seconds() / (365.25 * 86400)
    per_year = (len(equity) - 1) / span_years if span_years > 0 else 0.0
    mean = returns.rolling(window).mean()
    std = returns.rolling(window).std()
    return (mean / std.where(std > 0) * math.sqrt(per_year)).rename("rolling Sharpe")


def period_returns(equity: pd.Series) -> pd.DataFrame:
    """Monthly returns (%) with a row per year and a 'year' column (compounded)."""
    month_end = equity.resample("ME").last().dropna()
    start = equity.iloc[0]
    previous = month_end.shift(1).fillna(start)
    monthly = (month_end / previous - 1.0) * 100.0
    table = pd.DataFrame(
        {"year": monthly.index.year, "month": monthly.index.month, "ret": monthly.to_numpy()}
    )
    grid = table.pivot(index="year", columns="month", values="ret")
    year_end = equity.resample("YE").last().dropna()
    yearly = (year_end / year_end.shift(1).fillna(start) - 1.0) * 100.0
    grid["year"] = yearly.to_numpy()
    return grid


def _figure(result: dict[str, Any]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    frame = equity_frame(result)
    equity = frame["equity"].dropna()
    fig = make_subplots(
        rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.03,
        row_heights=[0.34, 0.16, 0.34, 0.16],
        subplot_titles=("Equity vs buy & hold", "Drawdown (%)", "Price, entries and exits",
                        "Rolling Sharpe"),
    )  # fmt: skip
    fig.add_trace(go.Scatter(x=equity.index, y=equity, name="strategy", line={"width": 1.5}), 1, 1)
    closes = frame["close"].dropna()
    if len(closes) and len(equity):
        benchmark = equity.iloc[0] * closes / closes.iloc[0]
        fig.add_trace(
            go.Scatter(x=benchmark.index, y=benchmark, name="buy & hold",
                       line={"width": 1, "dash": "dot", "color": "#888"}),
            1, 1,
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=equity.index, y=drawdown_pct(equity), name="drawdown", fill="tozeroy",
                   line={"color": "#b3261e", "width": 1}),
        2, 1,
    )  # fmt: skip
    fig.add_trace(go.Scatter(x=closes.index, y=closes, name="close", line={"width": 1}), 3, 1)
    trades = result.get("trades") or []  # a portfolio has fills, not round trips
    for when, price, label, symbol, colour in (
        ("entry_time", "entry_price", "entry", "triangle-up", "#137333"),
        ("exit_time", "exit_price", "exit", "triangle-down", "#b3261e"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[pd.Timestamp(t[when]) for t in trades], y=[t[price] for t in trades],
                mode="markers", name=label,
                marker={"symbol": symbol, "size": 9, "color": colour},
                text=[f"{t['side']} {label}" for t in trades],
            ),
            3, 1,
        )  # fmt: skip
    sharpe = rolling_sharpe(equity) if len(equity) > 2 else equity.iloc[:0]
    fig.add_trace(go.Scatter(x=sharpe.index, y=sharpe, name="rolling Sharpe"), 4, 1)
    fig.update_layout(height=1000, hovermode="x unified", margin={"l": 60, "r": 20, "t": 40})
    fig.update_xaxes(type="date")
    return fig


def _returns_table(result: dict[str, Any]) -> str:
    equity = equity_frame(result)["equity"].dropna()
    if len(equity) < 2:
        return "<p>not enough points for period returns</p>"
    grid = period_returns(equity)
    months = [m for m in range(1, 13) if m in grid.columns]
    head = "".join(f"<th>{pd.Timestamp(2000, m, 1):%b}</th>" for m in months)

    def cell(value: float) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "<td></td>"
        return f'<td class="{"pos" if value >= 0 else "neg"}">{value:.2f}%</td>'

    body = "".join(
        f"<tr><th>{year}</th>{''.join(cell(row[m]) for m in months)}{cell(row['year'])}</tr>"
        for year, row in grid.iterrows()
    )
    return f"<table><tr><th>year</th>{head}<th>year</th></tr>{body}</table>"


def _trades_table(trades: list[dict[str, Any]]) -> str:
    columns = (
        ("entry_time", "entry", "{}"), ("exit_time", "exit", "{}"), ("side", "side", "{}"),
        ("size", "size", "{:,.4f}"), ("entry_price", "entry price", "{:.4f}"),
        ("exit_price", "exit price", "{:.4f}"), ("commission", "commission", "{:,.2f}"),
        ("net_pnl", "net P&L", "{:,.2f}"), ("pnl_pct", "P&L %", "{:.2f}%"),
        ("bars_held", "bars held", "{:,}"), ("exit_reason", "exit reason", "{}"),
    )  # fmt: skip
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in columns)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(fmt(t.get(k), p))}</td>" for k, _, p in columns)
        + "</tr>"
        for t in trades[:MAX_TRADE_ROWS]
    )
    shown = min(MAX_TRADE_ROWS, len(trades))
    return f"<h2>Trades ({shown} of {len(trades)})</h2><table><tr>{head}</tr>{rows}</table>"


def _symbols_table(result: dict[str, Any]) -> str:
    """A universe's or portfolio's row per symbol (empty for a single backtest)."""
    rows = result.get("per_symbol")
    if not rows:
        return ""
    columns = [("symbol", "symbol", "{}"), *symbol_columns(result)]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(fmt(r.get(k), p))}</td>" for k, _, p in columns)
        + "</tr>"
        for r in rows
    )
    return (
        f"<h2>Per symbol ({html.escape(result['kind'])})</h2><table><tr>{head}</tr>{body}</table>"
    )


def page(title: str, body: str) -> str:
    """A whole offline HTML document around ``body`` (plotly.js inlined); the training
    report is built with it too."""
    from plotly.offline import get_plotlyjs

    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>{body}</body></html>\n"
    )


def chart(fig: Any, div_id: str) -> str:
    """A Plotly figure as a div for ``page``."""
    return str(
        fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                    config={"responsive": True, "displaylogo": False})
    )  # fmt: skip


def backtest_report(operation_id: str, result: dict[str, Any]) -> str:
    """The whole report of one backtest as one HTML document."""
    stats = result["statistics"]
    title = run_title(result)
    warnings = "".join(
        f'<p class="warn">warning: {html.escape(w)}</p>' for w in result.get("warnings") or []
    )
    model = result.get("model")
    model_text = ""
    if model:
        model_text = f"<p>{html.escape(model_line(model))}</p>"
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(fmt(stats.get(k), p))}</td></tr>"
        for k, label, p in STAT_ROWS
    )
    body = (
        f"<h1>{html.escape(title)}</h1><p>operation <code>{html.escape(operation_id)}</code>"
        f", {html.escape(str(stats.get('start')))} to {html.escape(str(stats.get('end')))}"
        f"</p>{model_text}{warnings}{chart(_figure(result), 'charts')}"
        f"<h2>Returns by month and year</h2>{_returns_table(result)}"
        f"<h2>Statistics</h2><table>{rows}</table>{_symbols_table(result)}"
        f"{_trades_table(result.get('trades') or [])}"
    )
    return page(f"KTRDR backtest {operation_id}", body)


def compare_report(results: dict[str, dict[str, Any]]) -> str:
    """Several backtests: equity curves overlaid on one dated, zoomable chart, and their
    statistics side by side."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for op_id, result in results.items():
        equity = equity_frame(result)["equity"].dropna()
        name = f"{result['strategy_name']} {result['symbol']} ({op_id[-8:]})"
        fig.add_trace(go.Scatter(x=equity.index, y=equity, name=name, line={"width": 1.5}))
    fig.update_layout(title="Equity curves", height=520, hovermode="x unified")
    fig.update_xaxes(type="date")
    head = "".join(
        f"<th>{html.escape(r['strategy_name'])}<br>{html.escape(r['symbol'])} "
        f"{html.escape(r['timeframe'])}<br><code>{html.escape(op_id)}</code></th>"
        for op_id, r in results.items()
    )
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(
            f"<td>{html.escape(fmt(r['statistics'].get(k), p))}</td>" for r in results.values()
        )
        + "</tr>"
        for k, label, p in STAT_ROWS
    )
    body = (
        f"<h1>{len(results)} backtests compared</h1>{chart(fig, 'equity-compare')}"
        f"<h2>Statistics</h2><table><tr><th></th>{head}</tr>{rows}</table>"
    )
    return page("KTRDR backtests compared", body)
