"""Backtest results for people: statistics and trade tables and a terminal sparkline; the
HTML report (interactive Plotly charts, one offline file) is in ktrdr.cli.html_report."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ktrdr.reports import fmt

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


# Per-symbol columns of a universe (each symbol's own statistics) and of a portfolio (its
# share of the one account): (key, header, format).
UNIVERSE_COLUMNS = [
    ("total_return_pct", "return", "{:.2f}%"),
    ("sharpe_ratio", "Sharpe", "{:.3f}"),
    ("max_drawdown_pct", "max DD", "{:.2f}%"),
    ("num_trades", "trades", "{:,}"),
    ("win_rate_pct", "win rate", "{:.1f}%"),
    ("exposure_pct", "exposure", "{:.1f}%"),
    ("final_equity", "final equity", "{:,.2f}"),
]
PORTFOLIO_COLUMNS = [
    ("weight", "weight", "{:.3f}"),
    ("pnl", "P&L", "{:,.2f}"),
    ("contribution_pct", "contribution", "{:.2f}%"),
    ("commission", "commission", "{:,.2f}"),
    ("fills", "fills", "{:,}"),
    ("exposure_pct", "exposure", "{:.1f}%"),
    ("final_value", "final value", "{:,.2f}"),
]


def run_title(result: dict[str, Any]) -> str:
    """``sma_crossover on EURUSD 1h``; several symbols: ``… on 3 symbols 1h (portfolio)``."""
    symbols = result.get("symbols")
    where = f"{len(symbols)} symbols" if symbols else result["symbol"]
    kind = f" ({result['kind']})" if symbols else ""
    return f"{result['strategy_name']} on {where} {result['timeframe']}{kind}"


def symbol_columns(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return PORTFOLIO_COLUMNS if result.get("kind") == "portfolio" else UNIVERSE_COLUMNS


def symbols_table(result: dict[str, Any]) -> Table:
    """One row per symbol of a universe or portfolio."""
    columns = symbol_columns(result)
    table = Table(title=f"Per symbol ({result['kind']})", title_justify="left")
    table.add_column("symbol", no_wrap=True)
    for _, header, _ in columns:
        table.add_column(header, justify="right")
    for row in result["per_symbol"]:
        table.add_row(row["symbol"], *(fmt(row.get(key), pattern) for key, _, pattern in columns))
    return table


def statistics_table(result: dict[str, Any]) -> Table:
    stats = result["statistics"]
    title = run_title(result)
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


def model_line(model: dict[str, Any]) -> str:
    """Which model a backtest traded on and what it was trained on."""
    ranges = model.get("date_ranges") or {}
    train, test = ranges.get("train") or {}, ranges.get("test") or {}
    span = f", train {train['start'][:10]}..{train['end'][:10]}" if train else ""
    tested = f", test {test['start'][:10]}..{test['end'][:10]}" if test else ""
    return (
        f"model {model['name']} v{model['version']} (trained on {model['symbol']} "
        f"{model['timeframe']}{span}{tested})"
    )
