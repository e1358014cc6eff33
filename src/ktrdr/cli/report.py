"""Backtest results for people: statistics and trade tables, a terminal sparkline, and a
self-contained HTML report with the equity curve as inline SVG (no network, no JS)."""

from __future__ import annotations

import html
from typing import Any

from rich.table import Table

_BLOCKS = "▁▂▃▄▅▆▇█"

# (key, label, format) — the statistics a reader looks for first, in reading order.
STAT_ROWS = [
    ("start", "start", "{}"),
    ("end", "end", "{}"),
    ("bars", "bars", "{:,}"),
    ("initial_capital", "initial capital", "{:,.2f}"),
    ("final_equity", "final equity", "{:,.2f}"),
    ("total_return_pct", "total return", "{:.2f}%"),
    ("annualized_return_pct", "annualised return", "{:.2f}%"),
    ("cagr_pct", "CAGR", "{:.2f}%"),
    ("buy_and_hold_return_pct", "buy & hold return", "{:.2f}%"),
    ("volatility_pct", "volatility (ann.)", "{:.2f}%"),
    ("sharpe_ratio", "Sharpe", "{:.3f}"),
    ("sortino_ratio", "Sortino", "{:.3f}"),
    ("calmar_ratio", "Calmar", "{:.3f}"),
    ("max_drawdown_pct", "max drawdown", "{:.2f}%"),
    ("max_drawdown_duration_days", "max drawdown duration", "{:.1f} days"),
    ("num_trades", "trades", "{:,}"),
    ("win_rate_pct", "win rate", "{:.1f}%"),
    ("best_trade_pct", "best trade", "{:.2f}%"),
    ("worst_trade_pct", "worst trade", "{:.2f}%"),
    ("avg_trade_pct", "average trade", "{:.2f}%"),
    ("profit_factor", "profit factor", "{:.3f}"),
    ("exposure_pct", "exposure", "{:.1f}%"),
    ("total_commission", "commission paid", "{:,.2f}"),
]


def fmt(value: Any, pattern: str) -> str:
    if value is None:
        return "n/a"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def sparkline(values: list[float], width: int = 60) -> str:
    """Equity as block characters, resampled to `width` columns."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width - 1)] + [values[-1]]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_BLOCKS[int((v - low) / span * (len(_BLOCKS) - 1))] for v in values)


def statistics_table(result: dict[str, Any]) -> Table:
    stats = result["statistics"]
    title = f"{result['strategy_name']} on {result['symbol']} {result['timeframe']}"
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, label, pattern in STAT_ROWS:
        table.add_row(label, fmt(stats.get(key), pattern))
    return table


def trades_table(trades: list[dict[str, Any]], limit: int) -> Table:
    shown = trades[:limit]
    # Times never wrap or truncate: they are what a reader looks up. Fill prices are in
    # the HTML report, which has the room.
    table = Table(title=f"Trades ({len(shown)} of {len(trades)})", title_justify="left")
    table.add_column("entry (UTC)", no_wrap=True, min_width=16)
    table.add_column("exit (UTC)", no_wrap=True, min_width=16)
    table.add_column("side")
    table.add_column("net P&L", justify="right")
    table.add_column("P&L %", justify="right")
    for t in shown:
        pnl = t.get("net_pnl") or 0.0
        style = "green" if pnl > 0 else "red"
        table.add_row(
            t["entry_time"][:16].replace("T", " "),
            t["exit_time"][:16].replace("T", " "),
            t["side"],
            f"[{style}]{fmt(pnl, '{:,.2f}')}[/]",
            fmt(t.get("pnl_pct"), "{:.2f}%"),
        )
    return table


def equity_values(result: dict[str, Any]) -> list[float]:
    return [p["equity"] for p in result["equity_curve"] if p["equity"] is not None]


def _svg_curve(points: list[dict[str, Any]], width: int = 900, height: int = 280) -> str:
    values = [p["equity"] for p in points if p["equity"] is not None]
    if len(values) < 2:
        return "<p>not enough points for a chart</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - (v - low) / span * (height - 20) - 10:.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="equity curve from {low:,.0f} to {high:,.0f}">'
        f'<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" points="{coords}"/>'
        f'<text x="4" y="14" font-size="12">{high:,.2f}</text>'
        f'<text x="4" y="{height - 2}" font-size="12">{low:,.2f}</text></svg>'
    )


def _trade_row(trade: dict[str, Any]) -> str:
    cells = (
        trade["entry_time"],
        trade["exit_time"],
        trade["side"],
        fmt(trade["entry_price"], "{:.4f}"),
        fmt(trade["exit_price"], "{:.4f}"),
        fmt(trade.get("net_pnl"), "{:,.2f}"),
        fmt(trade.get("pnl_pct"), "{:.2f}%"),
    )
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def html_report(operation_id: str, result: dict[str, Any]) -> str:
    stats = result["statistics"]
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(fmt(stats.get(k), p))}</td></tr>"
        for k, label, p in STAT_ROWS
    )
    trade_rows = "".join(_trade_row(t) for t in result["trades"][:500])
    title = html.escape(f"{result['strategy_name']} on {result['symbol']} {result['timeframe']}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>KTRDR backtest {operation_id}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}}
table{{border-collapse:collapse}}th,td{{padding:2px 10px;border-bottom:1px solid #ddd;
text-align:right}}th{{text-align:left}}</style></head><body>
<h1>{title}</h1><p>operation <code>{html.escape(operation_id)}</code></p>
<h2>Equity curve</h2>{_svg_curve(result["equity_curve"])}
<h2>Statistics</h2><table>{rows}</table>
<h2>Trades (first {min(500, len(result["trades"]))} of {len(result["trades"])})</h2>
<table><tr><th>entry</th><th>exit</th><th>side</th><th>entry price</th><th>exit price</th>
<th>net P&amp;L</th><th>P&amp;L %</th></tr>{trade_rows}</table></body></html>
"""
