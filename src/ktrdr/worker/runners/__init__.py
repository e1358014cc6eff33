"""Job runners by operation type: the only code that executes jobs (worker side only)."""

from __future__ import annotations

import importlib.util

from ktrdr.engine.training.network import TORCH_MISSING
from ktrdr.operations.model import OperationType
from ktrdr.worker.job import Runner
from ktrdr.worker.runners import backtest, data_download, diagnostic, sweep_chunk, training

RUNNERS: dict[OperationType, Runner] = {
    OperationType.BACKTESTING: backtest.run_backtest_job,
    OperationType.DATA_DOWNLOAD: data_download.run_data_download,
    OperationType.DIAGNOSTIC: diagnostic.run_diagnostic,
    OperationType.TRAINING: training.run_training_job,
    OperationType.SWEEP_CHUNK: sweep_chunk.run_sweep_chunk,
}

# The phases each runner opens (span `<prefix>.<phase>`, phase-duration histogram).
PHASES: dict[OperationType, tuple[str, ...]] = {
    OperationType.BACKTESTING: backtest.PHASES,
    OperationType.DATA_DOWNLOAD: data_download.PHASES,
    OperationType.DIAGNOSTIC: diagnostic.PHASES,
    OperationType.TRAINING: training.PHASES,
    OperationType.SWEEP_CHUNK: sweep_chunk.PHASES,
}


def runner_for(op_type: OperationType) -> Runner | None:
    return RUNNERS.get(op_type)


# Kinds whose runner needs an optional extra: the module, and what to say when it is missing.
_NEEDS: dict[OperationType, tuple[str, str]] = {
    OperationType.TRAINING: ("torch", TORCH_MISSING),
}


def missing_extra(op_type: OperationType) -> str | None:
    """How to install what ``op_type``'s runner lacks here, or None when it can run."""
    need = _NEEDS.get(op_type)
    if need is None or importlib.util.find_spec(need[0]) is not None:
        return None
    return f"{op_type.value}: {need[1]}"
