"""Backtest engine benchmark (run by hand, not a test).

1,000,000 synthetic 1h bars through the engine end to end (indicators, signals,
simulation, statistics) for the SMA(10)/SMA(30) crossover and the RSI fuzzy rule base,
beside a plain-numpy vectorised crossover computed in the same run; the same at 100,000
bars. Then the breadth cases, each as bars/s against the crossover's in the same run
(goal: within 3x): stops and volatility sizing (trend_stops), a 1d filter on 1h bars
(rsi_daily_trend), a 20-symbol universe and a 20-symbol portfolio of 100,000 bars each.

    .venv/bin/python bench/bench_backtest.py [--bars 1000000] [--repeat 3]

Writes bench/results/backtest-<UTC time>.md, with the machine's load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from ktrdr.engine.backtest import run_backtest
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.portfolio import run_portfolio, run_universe
from ktrdr.engine.strategy import load_strategy

COMMISSION, SLIPPAGE = 0.001, 0.0005


def numpy_crossover(bars: pd.DataFrame) -> float:
    """Reference: SMA(10)/SMA(30) long/flat, next-open fills, costs per change; final equity."""
    close = bars["close"].to_numpy()
    open_ = bars["open"].to_numpy()
    csum = np.concatenate(([0.0], np.cumsum(close)))
    fast = np.full(len(close), np.nan)
    slow = np.full(len(close), np.nan)
    fast[9:] = (csum[10:] - csum[:-10]) / 10
    slow[29:] = (csum[30:] - csum[:-30]) / 30
    above = fast > slow
    cross = np.zeros(len(close))
    cross[1:][above[1:] & ~above[:-1] & ~np.isnan(slow[:-1])] = 1.0
    cross[1:][~above[1:] & above[:-1] & ~np.isnan(slow[1:])] = -1.0
    # Forward-fill the last signal into a long(1)/flat(0) target, decided at close.
    idx = np.where(cross != 0, np.arange(len(close)), 0)
    np.maximum.accumulate(idx, out=idx)
    target = np.where(cross[idx] > 0, 1.0, 0.0)
    held = np.concatenate(([0.0], target[:-1]))  # filled at the next open
    # Open-to-open returns while held, minus costs on each change of position.
    oo = np.concatenate((open_[1:] / open_[:-1], [close[-1] / open_[-1]])) - 1.0
    changes = np.abs(np.diff(np.concatenate(([0.0], held))))
    growth = (1.0 + held * oo) * (1.0 - changes * (COMMISSION + SLIPPAGE))
    return float(np.prod(growth))


def interleaved(
    fns: dict[str, Callable[[], object]], repeat: int
) -> dict[str, tuple[float, object]]:
    """Best wall time (and last result) of each function, run in turns: on a shared,
    loaded machine a burst of load then hits every contender alike, so the ratios
    between them hold even when the absolute times move."""
    best: dict[str, tuple[float, object]] = {k: (float("inf"), None) for k in fns}
    for _ in range(repeat):
        for label, fn in fns.items():
            t0 = time.perf_counter()
            out = fn()
            took = time.perf_counter() - t0
            best[label] = (min(best[label][0], took), out)
    return best


def peak_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    bars = generate_synthetic_bars("1h", args.bars, seed=42)
    strategies = {name: load_strategy(name) for name in ("sma_crossover", "rsi_fuzzy")}
    # Warm the numba kernel (compiled or loaded from cache) outside the timings.
    run_backtest(strategies["sma_crossover"], bars.iloc[:1000])

    load_before = os.getloadavg()
    rows = []
    for n in (args.bars, 100_000):
        sub = bars.iloc[:n]
        fns: dict[str, Callable[[], object]] = {"numpy": lambda b=sub: numpy_crossover(b)}
        fns |= {name: (lambda s=s, b=sub: run_backtest(s, b)) for name, s in strategies.items()}
        times = interleaved(fns, args.repeat)
        t_np = times["numpy"][0]
        rows.append((f"numpy reference crossover, {n:,} bars", n, t_np,
                     peak_mb(lambda b=sub: numpy_crossover(b)), None))  # fmt: skip
        for name, strategy in strategies.items():
            t, result = times[name]
            trades = result.statistics.num_trades  # type: ignore[attr-defined]
            mem = peak_mb(lambda s=strategy, b=sub: run_backtest(s, b))
            rows.append((f"engine {name} ({trades} trades), {n:,} bars", n, t, mem, t / t_np))

    cross = strategies["sma_crossover"]
    universe = {f"S{i:02d}": generate_synthetic_bars("1h", 100_000, seed=i) for i in range(20)}
    cases: dict[str, Callable[[], object]] = {"crossover": lambda: run_backtest(cross, bars)}
    sizes = {"crossover": args.bars}
    for name in ("trend_stops", "rsi_daily_trend"):
        strategy = load_strategy(name)
        run_backtest(strategy, bars.iloc[:5000])
        cases[name] = lambda s=strategy: run_backtest(s, bars)
        sizes[name] = args.bars
    cases["universe"] = lambda: run_universe(cross, universe)
    cases["portfolio"] = lambda: run_portfolio(cross, universe, rebalance_every=24)
    sizes["universe"] = sizes["portfolio"] = 2_000_000
    times = interleaved(cases, args.repeat)
    crossover_rate = args.bars / times["crossover"][0]
    breadth = []
    for name in ("trend_stops", "rsi_daily_trend"):
        t, result = times[name]
        trades = result.statistics.num_trades  # type: ignore[attr-defined]
        breadth.append((f"{name} ({trades} trades), {args.bars:,} bars", args.bars, t))
    breadth.append(("sma_crossover universe, 20 × 100,000 bars", 2_000_000, times["universe"][0]))
    breadth.append(("sma_crossover portfolio, 20 × 100,000 bars, daily rebalance", 2_000_000,
                    times["portfolio"][0]))  # fmt: skip
    load_after = os.getloadavg()

    lines = [
        f"# Backtest benchmark — {dt.date.today().isoformat()}",
        "",
        f"{args.bars:,} synthetic 1h bars, end to end (indicators, signals, simulation,",
        f"statistics); best of {args.repeat}, the contenders of each table run in turns;",
        "peak memory by tracemalloc in a separate run.",
        "",
        f"Load average (1, 5, 15 min) on this shared {os.cpu_count()}-CPU machine: "
        f"{', '.join(f'{x:.2f}' for x in load_before)} at the start, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} at the end.",
        "",
        "| run | wall time (s) | bars/s | peak memory (MB) | ratio to numpy |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, n, t, mem, ratio in rows:
        r = "1.00" if ratio is None else f"{ratio:.2f}"
        lines.append(f"| {label} | {t:.3f} | {n / t:,.0f} | {mem:.0f} | {r} |")
    lines += [
        "",
        "Breadth (bars/s against the 1M-bar crossover's, run in turns with these; goal: at most",
        "3x slower):",
        "",
        "| run | wall time (s) | bars/s | crossover bars/s ÷ these |",
        "|---|---:|---:|---:|",
    ]
    for label, n, t in breadth:
        lines.append(f"| {label} | {t:.3f} | {n / t:,.0f} | {crossover_rate / (n / t):.2f} |")
    lines += [
        "",
        "The numpy reference is a long/flat SMA(10)/SMA(30) crossover with next-open fills",
        "and costs, but no trade list, equity curve or statistics.",
        "",
        f"- machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs",
        f"- python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"numba {numba.__version__}",
    ]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(__file__).parent / "results" / f"backtest-{stamp}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write("\n".join(lines) + f"\n\nwritten to {out}\n")


if __name__ == "__main__":
    main()
