"""Backtest results as pandas objects, with a notebook view and an interactive plot."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ktrdr.client.models import Operation

TIME_COLUMNS = ("entry_time", "exit_time")
# The figures the notebook table shows, in this order (all keys of the API's statistics).
HEADLINE_STATS = (
    ("total_return_pct", "Total return %"),
    ("buy_and_hold_return_pct", "Buy & hold %"),
    ("sharpe_ratio", "Sharpe"),
    ("max_drawdown_pct", "Max drawdown %"),
    ("num_trades", "Trades"),
    ("win_rate_pct", "Win rate %"),
    ("profit_factor", "Profit factor"),
    ("final_equity", "Final equity"),
)
SPARKLINE_POINTS = 200


def _utc(values: Any) -> pd.DatetimeIndex:
    # One resolution whatever pandas infers from the strings, so frames compare exactly.
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")


def trades_frame(trades: list[dict[str, Any]]) -> pd.DataFrame:
    """Trades indexed by entry time; exit_time a UTC column, numbers as floats/ints."""
    frame = pd.DataFrame(trades)
    if frame.empty:
        return pd.DataFrame(index=_utc([]).rename("entry_time"))
    frame["exit_time"] = _utc(frame["exit_time"])
    frame.index = _utc(frame.pop("entry_time")).rename("entry_time")
    return frame


def equity_frame(points: list[dict[str, Any]]) -> pd.DataFrame:
    """Equity at each stored bar's close, indexed by the bar's UTC time."""
    index = _utc([p["timestamp"] for p in points]).rename("timestamp")
    equity = [float("nan") if p.get("equity") is None else float(p["equity"]) for p in points]
    return pd.DataFrame({"equity": pd.Series(equity, index=index, dtype="float64")})


def stats_series(statistics: dict[str, Any], name: str | None = None) -> pd.Series:
    values = dict(statistics)
    for key in ("start", "end"):
        if values.get(key):
            values[key] = pd.Timestamp(values[key])
    return pd.Series(values, name=name, dtype="object")


@dataclass
class BacktestResult:
    """A completed backtest: `trades` and `equity` DataFrames, `stats` a Series."""

    operation: Operation
    statistics: dict[str, Any]
    trade_records: list[dict[str, Any]] = field(repr=False)
    equity_points: list[dict[str, Any]] = field(repr=False)

    @property
    def id(self) -> str:
        return self.operation.id

    @property
    def strategy(self) -> str:
        params = self.operation.params or {}
        result = self.operation.result or {}
        return str(result.get("strategy_name") or params.get("strategy") or "backtest")

    @property
    def trades(self) -> pd.DataFrame:
        return trades_frame(self.trade_records)

    @property
    def equity(self) -> pd.DataFrame:
        return equity_frame(self.equity_points)

    @property
    def drawdown_pct(self) -> pd.Series:
        """Percent below the running peak at each stored point (0 at a new high)."""
        equity = self.equity["equity"]
        return (equity / equity.cummax() - 1.0) * 100.0

    @property
    def stats(self) -> pd.Series:
        return stats_series(self.statistics, self.strategy)

    def __repr__(self) -> str:
        s = self.statistics
        return (
            f"<BacktestResult {self.id} {self.strategy}: return {s.get('total_return_pct')}%, "
            f"{s.get('num_trades')} trades, max drawdown {s.get('max_drawdown_pct')}%>"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{label}</th><td>{_fmt(self.statistics.get(key))}"
            "</td></tr>"
            for key, label in HEADLINE_STATS
            if key in self.statistics
        )
        title = html.escape(f"{self.strategy} · {self.id}")
        return (
            f"<div><b>{title}</b><table>{rows}</table>"
            f"{sparkline_svg([p.get('equity') for p in self.equity_points])}</div>"
        )

    def plot(self) -> Any:
        """An interactive Plotly figure: equity, drawdown, and the trades' fills."""
        from ktrdr.client.plot import backtest_figure

        title = f"{self.strategy} · {self.id}"
        return backtest_figure(self.equity, self.drawdown_pct, self.trades, title)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return html.escape(str(value))


def sparkline_svg(values: list[Any], width: int = 240, height: int = 40) -> str:
    """An inline SVG line of the values (thinned to SPARKLINE_POINTS), no dependencies."""
    points = [float(v) for v in values if v is not None]
    if len(points) < 2:
        return ""
    step = max(1, len(points) // SPARKLINE_POINTS)
    points = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
    low, high = min(points), max(points)
    span = (high - low) or 1.0
    xy = " ".join(
        f"{i * width / (len(points) - 1):.1f},{height - (v - low) / span * height:.1f}"
        for i, v in enumerate(points)
    )
    colour = "#2a9d3f" if points[-1] >= points[0] else "#c0392b"
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"class='ktrdr-sparkline'><polyline fill='none' stroke='{colour}' stroke-width='1.5' "
        f"points='{xy}'/></svg>"
    )
