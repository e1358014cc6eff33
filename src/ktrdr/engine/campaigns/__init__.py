"""Research campaigns in the engine: batch evaluation of parameter sets, objectives,
walk-forward windows and overfitting diagnostics (pure library; see docs/campaigns.md).

``objectives`` is light (no numpy); the others load numpy/numba, so this package imports
them only when one of their names is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CombinationResult": "batch",
    "evaluate_batch": "batch",
    "deflated_sharpe_ratio": "diagnostics",
    "probability_of_backtest_overfitting": "diagnostics",
    "sweep_deflated_sharpe": "diagnostics",
    "Window": "walkforward",
    "walkforward_windows": "walkforward",
    "stitch_equity": "walkforward",
    "walkforward_efficiency": "walkforward",
    "OBJECTIVES": "objectives",
    "Objective": "objectives",
    "get_objective": "objectives",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
