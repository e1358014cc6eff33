"""A backtesting worker loads the compiled kernels before its first job (ktrdr.worker.warmup)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from ktrdr.worker.warmup import warm_backtest_kernels

# In a fresh interpreter: this one has long loaded every kernel in other tests.
_FRESH = textwrap.dedent(
    """
    from ktrdr.engine.campaigns import kernels
    from ktrdr.worker.warmup import start_warming

    # The fill + statistics pass of every combination (moment_sums runs only for sweeps
    # that keep per-combination returns).
    assert not kernels.combination_pass.signatures, "loaded before the warm-up"
    start_warming().join(60)
    assert kernels.combination_pass.signatures
    print("warm")
    """
)


def test_the_warm_up_loads_the_batch_kernels_in_a_fresh_process() -> None:
    done = subprocess.run([sys.executable, "-c", _FRESH], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "warm"


def test_a_second_warm_up_costs_nothing_more() -> None:
    warm_backtest_kernels()
    assert warm_backtest_kernels() < 0.25
