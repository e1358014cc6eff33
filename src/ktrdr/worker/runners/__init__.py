"""Job runners by operation type: the only code that executes jobs (worker side only)."""

from __future__ import annotations

from ktrdr.operations.model import OperationType
from ktrdr.worker.job import Runner
from ktrdr.worker.runners import backtest, data_download, diagnostic

RUNNERS: dict[OperationType, Runner] = {
    OperationType.BACKTESTING: backtest.run_backtest_job,
    OperationType.DATA_DOWNLOAD: data_download.run_data_download,
    OperationType.DIAGNOSTIC: diagnostic.run_diagnostic,
}

# The phases each runner opens (span `<prefix>.<phase>`, phase-duration histogram).
PHASES: dict[OperationType, tuple[str, ...]] = {
    OperationType.BACKTESTING: backtest.PHASES,
    OperationType.DATA_DOWNLOAD: data_download.PHASES,
    OperationType.DIAGNOSTIC: diagnostic.PHASES,
}


def runner_for(op_type: OperationType) -> Runner | None:
    return RUNNERS.get(op_type)
