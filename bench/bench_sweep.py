"""Parameter-sweep benchmark, engine side (run by hand, not a test).

100 (fast, slow) SMA-crossover pairs on 1,000,000 synthetic 1h bars with 0.1 % commission
(no slippage), measured in the same run three ways:

1. ``evaluate_batch`` (ktrdr.engine.campaigns): one batch, shared indicators, compiled
   parallel fills + statistics;
2. a plain Python loop of ``run_backtest`` calls (the library, one backtest per pair);
3. vectorbt 1.2.0 broadcasting (``MA.run`` over the windows, ``ma_crossed_above/below``,
   ``Portfolio.from_signals`` with next-bar-open fills, then Sharpe / total return / trade
   count), in its own virtual env (created on first use; not a ktrdr dependency).

Then a 10,000-combination random sweep (``SearchSpace.sample``) in a fresh process, run as
a worker runs it (the worker's chunk runner, chunk after chunk of the largest chunk size),
whose peak RSS (VmHWM) is the per-worker memory figure. Batch and loop statistics are compared for
every pair (they must be equal to 1e-12). Compile time is measured apart (warm-up).

    nice -n 10 .venv/bin/python bench/bench_sweep.py [--bars 1000000] [--vbt-chunk 25]
        [--rss-bars 200000] [--rss-combos 10000]

Writes bench/results/sweep-<timestamp>.{json,md}. The platform end-to-end numbers
(through the API and workers) are another benchmark's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
from ktrdr.engine.backtest import prepare_data, run_backtest
from ktrdr.engine.campaigns import evaluate_batch
from ktrdr.engine.data import generate_synthetic_bars
from ktrdr.engine.strategy import builtin_strategy_text, validate_strategy_text
from ktrdr.engine.strategy.search import SearchSpace, apply_overrides

VBT_ENV = Path(os.environ.get("KTRDR_BENCH_VBT_ENV", "/work/benchenv-sweep"))
VBT_VERSION = "1.2.0"
COMMISSION, CAPITAL = 0.001, 100_000.0
FAST = "indicators.sma_fast.params.period"
SLOW = "indicators.sma_slow.params.period"
PAIRS = [(f, s) for f in range(5, 55, 5) for s in range(60, 260, 20)]
STRATEGY = builtin_strategy_text("sma_crossover").replace("slippage: 0.0005", "slippage: 0.0")

VBT_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd, vectorbt as vbt
folder, pairs, chunk = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
fees, cash = float(sys.argv[4]), float(sys.argv[5])
index = pd.to_datetime(np.load(folder + "/index.npy"), utc=True)
close = pd.Series(np.load(folder + "/close.npy"), index=index)
open_ = pd.Series(np.load(folder + "/open.npy"), index=index)

def sweep(close, open_, pairs):
    out = []
    for i in range(0, len(pairs), chunk):
        part = pairs[i:i + chunk]
        fast = vbt.MA.run(close, [f for f, _ in part], short_name="fast")
        slow = vbt.MA.run(close, [s for _, s in part], short_name="slow")
        # Decided at the close, filled at the next bar's open (as ktrdr does).
        entries = fast.ma_crossed_above(slow).vbt.signals.fshift(1)
        exits = fast.ma_crossed_below(slow).vbt.signals.fshift(1)
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=fees,
                                        init_cash=cash, freq="1h")
        sharpe, total, trades = pf.sharpe_ratio(), pf.total_return(), pf.trades.count()
        out += [[float(a), float(b), int(c)] for a, b, c in zip(sharpe, total, trades)]
    return out

t = time.perf_counter()
sweep(close.iloc[:2000], open_.iloc[:2000], pairs[:2])  # numba compilation
warm = time.perf_counter() - t
t, cpu = time.perf_counter(), time.process_time()
res = sweep(close, open_, pairs)
took, cpu = time.perf_counter() - t, time.process_time() - cpu
import resource
print(json.dumps({"seconds": took, "cpu_seconds": cpu, "warmup_seconds": warm, "results": res,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vectorbt": vbt.__version__, "numba": __import__("numba").__version__,
                  "numpy": np.__version__, "pandas": pd.__version__}))
"""


def ensure_vbt_env() -> tuple[Path | None, str]:
    """The vectorbt env's python, creating the env on first use; (None, why) if it fails."""
    python = VBT_ENV / "bin" / "python"
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(VBT_ENV)], capture_output=True)
        if made.returncode != 0:
            return None, made.stderr.decode()[-2000:]
    have = subprocess.run(
        [str(python), "-c", "import vectorbt; print(vectorbt.__version__)"],
        capture_output=True,
        text=True,
    )
    if have.stdout.strip() != VBT_VERSION:
        pip = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"vectorbt=={VBT_VERSION}"],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            return None, pip.stderr[-2000:]
    return python, "ok"


def run_vectorbt(bars: pd.DataFrame, chunk: int) -> dict[str, object]:
    python, why = ensure_vbt_env()
    if python is None:
        return {"error": f"vectorbt {VBT_VERSION} could not be installed: {why}"}
    with tempfile.TemporaryDirectory() as folder:
        np.save(f"{folder}/index.npy", bars.index.asi8)
        np.save(f"{folder}/close.npy", bars["close"].to_numpy())
        np.save(f"{folder}/open.npy", bars["open"].to_numpy())
        args = [folder, json.dumps(PAIRS), str(chunk), str(COMMISSION), str(CAPITAL)]
        done = subprocess.run(
            [str(python), "-c", VBT_SCRIPT, *args], capture_output=True, text=True
        )
    if done.returncode != 0:
        return {"error": done.stderr[-3000:]}
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (VmHWM). Not ru_maxrss: Linux carries
    the parent's peak across fork + exec into it, so a child would report the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(n_bars: int, n_combos: int) -> None:
    """In a fresh process: a random sweep of ``n_combos`` combinations run the way a worker
    runs it — chunk after chunk of ``MAX_CHUNK_COMBINATIONS`` through the worker's own
    chunk runner, on bars from a data home — keeping each chunk's result rows, as the
    worker holds them until it reports; prints JSON with the peak RSS (VmHWM)."""
    from prometheus_client import CollectorRegistry

    from ktrdr.engine.data import DataStore
    from ktrdr.jobs.campaigns import MAX_CHUNK_COMBINATIONS
    from ktrdr.operations.model import OperationType
    from ktrdr.telemetry.metrics import JobMetrics
    from ktrdr.worker.job import JobContext
    from ktrdr.worker.runners.sweep_chunk import run_sweep_chunk

    home = tempfile.mkdtemp(prefix="ktrdr-rss-")
    DataStore(Path(home) / "data").save(
        "EURUSD", "1h", generate_synthetic_bars("1h", n_bars, seed=42), source="synthetic"
    )
    text = STRATEGY + (
        f"search:\n  parameters:\n    {FAST}: {{range: [2, 300]}}\n"
        f"    {SLOW}: {{range: [10, 1500]}}\n"
        "  constraints: [sma_fast.period < sma_slow.period]\n"
    )
    combos = SearchSpace.from_strategy(validate_strategy_text(text)).sample(n_combos, seed=1)
    metrics = JobMetrics(registry=CollectorRegistry())

    def chunk(first: int, size: int) -> dict[str, object]:
        params = {
            "strategy": text, "symbol": "EURUSD", "timeframe": "1h", "capital": CAPITAL,
            "stage": "sweep", "keep_returns": True,
            "combinations": [{"key": str(i), "index": i, "params": combos[i]}
                             for i in range(first, min(first + size, len(combos)))],
        }  # fmt: skip
        ctx = JobContext(
            operation_id=f"chunk-{first}", op_type=OperationType.SWEEP_CHUNK, params=params,
            attempt=1, worker_id="bench", metrics=metrics, data_home=home,
            on_progress=lambda _: None,
        )  # fmt: skip
        return run_sweep_chunk(ctx)

    chunk(0, 2)  # compile / load the cache
    before = peak_rss_mb()
    t = time.perf_counter()
    rows = 0
    for first in range(0, len(combos), MAX_CHUNK_COMBINATIONS):
        out = chunk(first, MAX_CHUNK_COMBINATIONS)
        rows += len(out["results"])  # type: ignore[arg-type]
    took = time.perf_counter() - t
    out = {"bars": n_bars, "combinations": rows, "seconds": took,
           "chunk_size": MAX_CHUNK_COMBINATIONS, "keep_returns": True,
           "peak_rss_mb_before_sweep": before, "peak_rss_mb": peak_rss_mb()}  # fmt: skip
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--vbt-chunk", type=int, default=25, help="pairs per vectorbt call")
    parser.add_argument("--rss-bars", type=int, default=200_000)
    parser.add_argument("--rss-combos", type=int, default=10_000)
    parser.add_argument("--skip-vectorbt", action="store_true")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_bars, args.rss_combos)
        return
    bars = generate_synthetic_bars("1h", args.bars, seed=42)
    strategy = validate_strategy_text(STRATEGY)
    sets = [{FAST: f, SLOW: s} for f, s in PAIRS]
    data = prepare_data(bars)

    t = time.perf_counter()
    evaluate_batch(strategy, prepare_data(bars.iloc[:5000]), sets[:2], capital=CAPITAL)
    compile_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    batch = evaluate_batch(strategy, data, sets, capital=CAPITAL)
    batch_s, batch_cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"batch: {batch_s:.2f} s", flush=True)
    # Do threads pay? The same batch on one thread.
    threads = os.cpu_count() or 1
    t, cpu = time.perf_counter(), time.process_time()
    evaluate_batch(strategy, data, sets, capital=CAPITAL, threads=1)
    batch_1thread_s, batch_1thread_cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"batch on 1 thread: {batch_1thread_s:.2f} s", flush=True)

    t, cpu = time.perf_counter(), time.process_time()
    loop = [
        run_backtest(apply_overrides(strategy, p), bars, capital=CAPITAL).statistics.to_dict()
        for p in sets
    ]
    loop_s, loop_cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"loop: {loop_s:.2f} s", flush=True)
    mismatches = sum(
        1
        for b, want in zip(batch, loop, strict=True)
        for key, v in want.items()
        if v != b.statistics[key]
        and not (isinstance(v, float) and abs(v - b.statistics[key]) <= 1e-12 * max(1, abs(v)))
    )

    child = subprocess.run(
        [sys.executable, __file__, "--rss-child", "--rss-bars", str(args.rss_bars),
         "--rss-combos", str(args.rss_combos)],
        capture_output=True, text=True,
    )  # fmt: skip
    rss = (
        json.loads(child.stdout.strip().splitlines()[-1])
        if child.returncode == 0
        else {"error": child.stderr[-3000:]}
    )
    print(f"rss: {rss}", flush=True)
    stamp = benchlib.timestamp()
    # Written once before vectorbt runs (a stopped run keeps the rest), then again after.
    vbt: dict[str, object] = {
        "error": "skipped (--skip-vectorbt)" if args.skip_vectorbt
        else "not finished (the run was stopped before vectorbt ended)"
    }  # fmt: skip
    for final in (False, True):
        if final:
            if args.skip_vectorbt:
                break
            vbt = run_vectorbt(bars, args.vbt_chunk)
            print(f"vectorbt: {vbt.get('seconds', vbt)}", flush=True)
        env = benchlib.environment(["numpy", "pandas", "numba", "pydantic"])
        report = {
            "bars": args.bars,
            "pairs": len(PAIRS),
            "commission": COMMISSION,
            "nice": os.nice(0),
            "batch_seconds": batch_s,
            "batch_threads": threads,
            "batch_1thread_seconds": batch_1thread_s,
            "batch_cpu_seconds": batch_cpu,
            "batch_1thread_cpu_seconds": batch_1thread_cpu,
            "loop_cpu_seconds": loop_cpu,
            "batch_compile_or_cache_load_seconds": compile_s,
            "loop_seconds": loop_s,
            "batch_vs_loop_statistics_mismatches": mismatches,
            "vectorbt": {k: v for k, v in vbt.items() if k != "results"},
            "vectorbt_pairs_per_call": args.vbt_chunk,
            "vectorbt_trades_total": sum(r[2] for r in vbt.get("results", [])),  # type: ignore[union-attr]
            "ktrdr_trades_total": sum(b.statistics["num_trades"] for b in batch),
            "random_sweep": rss,
            "environment": env,
        }
        benchlib.write_json("sweep", stamp, report)
        (benchlib.RESULTS_DIR / f"sweep-{stamp}.md").write_text(markdown(report, env))
        print(f"wrote bench/results/sweep-{stamp}.md")


def markdown(r: dict[str, object], env: dict[str, object]) -> str:
    vbt = r["vectorbt"]
    assert isinstance(vbt, dict)
    batch, loop = float(r["batch_seconds"]), float(r["loop_seconds"])  # type: ignore[arg-type]
    vbt_s, vbt_cpu = vbt.get("seconds"), vbt.get("cpu_seconds")
    cpu = {
        k: float(r[k])
        for k in ("batch_cpu_seconds", "batch_1thread_cpu_seconds", "loop_cpu_seconds")
    }  # type: ignore[arg-type]
    one = float(r["batch_1thread_seconds"])  # type: ignore[arg-type]
    vbt_line = (
        f"| vectorbt {vbt.get('vectorbt')} broadcasting | {vbt_s:.2f} | {vbt_s / batch:.1f}x "
        f"| {vbt_cpu:.2f} | {vbt_cpu / cpu['batch_cpu_seconds']:.1f}x |"
        if isinstance(vbt_s, float) and isinstance(vbt_cpu, float)
        else f"| vectorbt | not measured: {str(vbt)[:300]} | | | |"
    )
    rss = r["random_sweep"]
    assert isinstance(rss, dict)
    lines = [
        f"# Sweep benchmark (engine) — {benchlib.timestamp()}",
        "",
        f"{r['pairs']} (fast, slow) SMA-crossover pairs on {r['bars']:,} synthetic 1h bars, "
        f"commission {r['commission']} per side, no slippage; one run each, same process "
        f"(vectorbt in its own env). Run with nice {r['nice']} on a shared machine.",
        "",
        "| method | wall time (s) | wall / batch | CPU time (s) | CPU / batch |",
        "|---|---:|---:|---:|---:|",
        f"| ktrdr evaluate_batch ({r['batch_threads']} threads) | {batch:.2f} | 1.0x "
        f"| {cpu['batch_cpu_seconds']:.2f} | 1.0x |",
        f"| ktrdr evaluate_batch, 1 thread | {one:.2f} | {one / batch:.1f}x "
        f"| {cpu['batch_1thread_cpu_seconds']:.2f} | "
        f"{cpu['batch_1thread_cpu_seconds'] / cpu['batch_cpu_seconds']:.1f}x |",
        f"| ktrdr loop of run_backtest | {loop:.2f} | {loop / batch:.1f}x "
        f"| {cpu['loop_cpu_seconds']:.2f} "
        f"| {cpu['loop_cpu_seconds'] / cpu['batch_cpu_seconds']:.1f}x |",
        vbt_line,
        "",
        "- batch vs loop statistics differing beyond 1e-12: "
        f"{r['batch_vs_loop_statistics_mismatches']}",
        f"- batch compile / cache load (warm-up, not in the time): "
        f"{float(r['batch_compile_or_cache_load_seconds']):.1f} s",  # type: ignore[arg-type]
        f"- trades: ktrdr {r['ktrdr_trades_total']:,}, vectorbt {r['vectorbt_trades_total']:,} "
        "(vectorbt leaves the last position open; ktrdr closes it at the last close)",
        f"- vectorbt peak RSS {vbt.get('peak_rss_mb', 0):.0f} MB, warm-up "
        f"{vbt.get('warmup_seconds', 0):.1f} s (numba compilation, not in the time), "
        f"{r['vectorbt_pairs_per_call']} pairs per call",
        f"- random sweep in a fresh process: {rss}",
        "",
        *benchlib.machine_lines(env),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
