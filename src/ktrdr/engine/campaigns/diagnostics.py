"""Overfitting diagnostics for sweeps: the Deflated Sharpe Ratio and the Probability of
Backtest Overfitting (formulas and references in docs/campaigns.md).

Sharpe ratios here are **per period** (per bar: mean / standard deviation of the per-bar
returns, not annualised). From a backtest's annualised ``sharpe_ratio`` take
``sharpe_ratio / sqrt(bars_per_year)``. Normal quantiles come from the standard library
(``statistics.NormalDist``), so nothing beyond numpy is needed at run time.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
# Splits per thread at least: below that a thread costs more than it saves.
_SPLITS_PER_THREAD = 2_000


def expected_max_sharpe(n_trials: int, trials_sharpe_variance: float) -> float:
    """E[max SR] of ``n_trials`` independent trials whose true Sharpe is 0 and whose
    estimated Sharpes have variance ``trials_sharpe_variance`` (per-period units):
    sqrt(V) * ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e))), γ = Euler-Mascheroni.
    0 for a single trial (nothing to deflate)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if trials_sharpe_variance < 0:
        raise ValueError(f"a variance cannot be negative, got {trials_sharpe_variance}")
    if n_trials == 1:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(trials_sharpe_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true SR > ``benchmark``) given an estimated per-period ``sharpe`` from ``n_obs``
    returns with the given skewness and (non-excess, normal = 3) kurtosis:
    Φ((SR - SR*) sqrt(T - 1) / sqrt(1 - γ3 SR + (γ4 - 1)/4 SR²))."""
    if n_obs < 2:
        raise ValueError(f"n_obs must be >= 2, got {n_obs}")
    spread = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:
        raise ValueError(
            f"skew {skew} and kurtosis {kurtosis} give a non-positive Sharpe variance at "
            f"SR {sharpe}; check that kurtosis is the non-excess one (normal = 3)"
        )
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(spread))


def deflated_sharpe_ratio(
    sharpe: float,
    n_trials: int,
    trials_sharpe_variance: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Deflated Sharpe Ratio (Bailey & López de Prado 2014): the probability that the true
    Sharpe of the selected strategy exceeds the expected maximum Sharpe of ``n_trials``
    skill-less trials. Inputs: the selected strategy's per-period ``sharpe`` measured on
    ``n_obs`` returns with that ``skew`` / non-excess ``kurtosis``; the number of trials
    and the variance of the trials' per-period Sharpes. Result in [0, 1]; above 0.95 is
    the paper's bar for a discovery."""
    benchmark = expected_max_sharpe(n_trials, trials_sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, benchmark, n_obs, skew, kurtosis)


def sweep_deflated_sharpe(
    statistics: list[Mapping[str, Any]], best: int, best_returns: npt.ArrayLike | None = None
) -> float:
    """DSR of combination ``best`` among a sweep's ``statistics`` dicts (``Statistics``
    keys): per-period Sharpes are ``sharpe_ratio / sqrt(bars_per_year)``, N = the number
    of combinations with a defined Sharpe, V their variance (ddof 1), T = ``bars``. Skew
    and kurtosis come from ``best_returns`` when given, else normal (0, 3). NaN when the
    best has no Sharpe or fewer than two combinations have one."""
    per_period = [
        float(st["sharpe_ratio"]) / math.sqrt(float(st["bars_per_year"]))
        for st in statistics
        if st.get("sharpe_ratio") is not None and math.isfinite(float(st["sharpe_ratio"]))
    ]
    chosen = statistics[best]
    if chosen.get("sharpe_ratio") is None or len(per_period) < 2:
        return math.nan
    sharpe = float(chosen["sharpe_ratio"]) / math.sqrt(float(chosen["bars_per_year"]))
    skew, kurt = 0.0, 3.0
    if best_returns is not None:
        _, skew, kurt, _ = return_moments(best_returns)
    variance = float(np.var(per_period, ddof=1))
    return deflated_sharpe_ratio(sharpe, len(per_period), variance, int(chosen["bars"]), skew, kurt)


def return_moments(returns: npt.ArrayLike) -> tuple[float, float, float, int]:
    """(per-period Sharpe, skewness, non-excess kurtosis, n) of a return series (population
    moments, as in the paper)."""
    # Compiled (imported here: the backend imports this module and never loads numba).
    from ktrdr.engine.campaigns.kernels import moment_sums

    r = np.ascontiguousarray(returns, dtype=np.float64)
    if len(r) < 2:
        raise ValueError("need at least 2 returns")
    return moments_from_sums(*moment_sums(r), len(r))


def moments_from_sums(
    mean: float, squares: float, cubes: float, fourths: float, n: int
) -> tuple[float, float, float, int]:
    """``return_moments`` from the series' mean and its sums of squared, cubed and
    fourth-power deviations (``kernels.moment_sums``, or a batch's aggregates)."""
    sd = math.sqrt(squares / n)  # numpy's r.std(), bit for bit
    if sd == 0:
        return math.nan, math.nan, math.nan, n
    skew = cubes / n / sd**3
    kurtosis = fourths / n / sd**4
    return mean / math.sqrt(squares / (n - 1)), skew, kurtosis, n


def sharpe_per_column(returns: FloatArray) -> FloatArray:
    """Per-period Sharpe (mean / std with ddof 1) of each column; NaN for a flat column."""
    sd = returns.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, returns.mean(axis=0) / sd, np.nan)


def cscv_logits(
    returns: npt.ArrayLike,
    n_splits: int = 16,
    metric: Callable[[FloatArray], FloatArray] | None = None,
) -> FloatArray:
    """The logits λ_c of combinatorially symmetric cross-validation, one per way of
    choosing n_splits/2 of the n_splits row blocks as in-sample (the rest out of sample):
    the trial best in sample by ``metric`` (default: per-period Sharpe) gets relative
    out-of-sample rank ω = r/(N+1) (r = 1 for the worst of N, ties averaged),
    λ = ln(ω / (1 - ω)). Combinations are in ``itertools.combinations`` order.

    ``returns``: (n_obs x n_trials) per-period returns, rows in time order; the rows are cut
    into ``n_splits`` contiguous blocks whose sizes differ by at most one. ``metric`` maps
    a (rows x trials) array to one value per trial (higher is better; NaN is worst).
    """
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError("returns must be a 2-d (n_obs x n_trials) array with >= 2 trials")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    if m.shape[0] < 2 * n_splits:
        raise ValueError(
            f"{m.shape[0]} observations are too few for {n_splits} splits; give at least "
            f"{2 * n_splits} rows or fewer splits"
        )
    blocks = np.array_split(np.arange(m.shape[0]), n_splits)
    masks = _split_masks(n_splits)
    if metric is None:
        return _split_sharpe_logits(m, blocks, masks)
    perf = _SplitMetric(m, blocks, metric)
    # Splits in chunks so the (splits x trials) performance tables stay ~32 MB.
    step = max(1, 2**22 // m.shape[1])
    return np.concatenate(
        [_logits(*perf(masks[i : i + step]), m.shape[1]) for i in range(0, len(masks), step)]
    )


@functools.lru_cache(maxsize=4)
def _split_masks(n_splits: int) -> npt.NDArray[np.bool_]:
    """Every choice of n_splits/2 in-sample blocks, in ``itertools.combinations`` order
    (12,870 rows for 16: built once, not per sweep)."""
    chosen = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)))
    masks = np.zeros((len(chosen), n_splits), dtype=bool)
    np.put_along_axis(masks, chosen, True, axis=1)
    masks.flags.writeable = False
    return masks


def _logits(is_perf: FloatArray, oos_perf: FloatArray, n_trials: int) -> FloatArray:
    is_perf = np.nan_to_num(is_perf, copy=False, nan=-np.inf)
    oos_perf = np.nan_to_num(oos_perf, copy=False, nan=-np.inf)
    best = np.argmax(is_perf, axis=1)
    picked = oos_perf[np.arange(len(best)), best][:, None]
    below = np.sum(oos_perf < picked, axis=1)
    ties = np.sum(oos_perf == picked, axis=1) - 1
    omega = (below + 1.0 + ties / 2.0) / (n_trials + 1.0)
    return np.asarray(np.log(omega / (1.0 - omega)), dtype=float)


class _SplitMetric:
    """In- and out-of-sample ``metric`` of every trial for each split (row by row)."""

    def __init__(
        self,
        m: FloatArray,
        blocks: list[npt.NDArray[np.int64]],
        metric: Callable[[FloatArray], FloatArray],
    ):
        self.m, self.blocks, self.metric = m, blocks, metric

    def __call__(self, masks: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
        rows = [
            np.concatenate([b for b, k in zip(self.blocks, mask, strict=True) if k])
            for mask in masks
        ]
        is_perf = np.array([self.metric(self.m[r]) for r in rows])
        oos_perf = np.array([self.metric(np.delete(self.m, r, axis=0)) for r in rows])
        return is_perf, oos_perf


def _split_sharpe_logits(
    m: FloatArray, blocks: list[npt.NDArray[np.int64]], masks: npt.NDArray[np.bool_]
) -> FloatArray:
    """λ of every split by per-period Sharpe, from per-block totals: a split's totals are
    those of its chosen blocks among the first half plus those among the second half, each
    looked up in a table of every subset of that half (2^(S/2) rows), so a split costs two
    look-ups per trial, not S additions; the loop is compiled (``cscv_kernel``). Columns
    are centred first so the sum-of-squares variance keeps its precision."""
    from ktrdr.engine.campaigns.cscv_kernel import split_logits

    centred = m - m.mean(axis=0)
    half, rest = len(blocks) // 2, len(blocks) - len(blocks) // 2
    sums = np.array([centred[b].sum(axis=0) for b in blocks])
    squares = np.array([(centred[b] ** 2).sum(axis=0) for b in blocks])
    counts = np.array([[len(b)] for b in blocks], dtype=float)

    def halves(x: FloatArray) -> tuple[FloatArray, FloatArray]:
        return _subset_totals(x[:half]), _subset_totals(x[half:])

    lo = masks[:, :half] @ (1 << np.arange(half))
    hi = masks[:, half:] @ (1 << np.arange(rest))
    n_lo, n_hi = halves(counts)
    tables = (halves(sums), halves(squares), (n_lo[:, 0].copy(), n_hi[:, 0].copy()),
              m.mean(axis=0), ((1 << half) - 1, (1 << rest) - 1))  # fmt: skip
    # Splits are independent and the kernel releases the GIL: on every core (it runs at the
    # end of a sweep, when the sweep's workers are done), each thread its own run of them.
    parts = min(os.cpu_count() or 1, max(1, len(lo) // _SPLITS_PER_THREAD))
    if parts == 1:
        return split_logits(lo, hi, *tables)
    cuts = np.array_split(np.arange(len(lo)), parts)
    with ThreadPoolExecutor(parts) as pool:
        runs = pool.map(lambda c: split_logits(lo[c], hi[c], *tables), cuts)
        return np.concatenate(list(runs))


def _subset_totals(rows: FloatArray) -> FloatArray:
    """Row ``code`` holds the sum of the rows whose bits are set in ``code``."""
    table = np.zeros((1, rows.shape[1]))
    for row in rows:
        table = np.concatenate([table, table + row])
    return table


def probability_of_backtest_overfitting(
    returns: npt.ArrayLike,
    n_splits: int = 16,
    metric: Callable[[FloatArray], FloatArray] | None = None,
) -> float:
    """PBO by CSCV (Bailey, Borwein, López de Prado & Zhu 2017): the share of in/out-of-
    sample splits in which the in-sample best trial ranks at or below the out-of-sample
    median (λ <= 0). ``returns`` is (n_obs x n_trials); see ``cscv_logits``. n_splits = 16
    makes C(16, 8) = 12,870 splits."""
    logits = cscv_logits(returns, n_splits, metric)
    return float(np.mean(logits <= 0.0))
