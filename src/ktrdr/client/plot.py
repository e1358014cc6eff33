"""Plotly charts of results; plotly is imported only when a chart is asked for."""

from __future__ import annotations

from typing import Any

import pandas as pd


def backtest_figure(
    equity: pd.DataFrame, drawdown_pct: pd.Series, trades: pd.DataFrame, title: str
) -> Any:
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as exc:  # an optional extra for chart users only
        raise ImportError("result.plot() needs plotly: pip install plotly") from exc
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.5, 0.2, 0.3],
        vertical_spacing=0.04,
        subplot_titles=("Equity", "Drawdown %", "Trades (fill prices)"),
    )
    fig.add_trace(go.Scatter(x=equity.index, y=equity["equity"], name="equity"), row=1, col=1)
    fig.add_trace(
        go.Scatter(x=equity.index, y=drawdown_pct, name="drawdown %", fill="tozeroy"),
        row=2,
        col=1,
    )
    if len(trades):
        fig.add_trace(
            go.Scatter(
                x=trades.index,
                y=trades["entry_price"],
                mode="markers",
                name="entry",
                marker={"symbol": "triangle-up", "size": 8},
                text=trades["side"],
            ),
            row=3,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=trades["exit_time"],
                y=trades["exit_price"],
                mode="markers",
                name="exit",
                marker={"symbol": "x", "size": 7},
                text=[f"net {v:,.2f}" for v in trades["net_pnl"]],
            ),
            row=3,
            col=1,
        )
    fig.update_layout(title=title, height=650, hovermode="x")
    return fig
