"""Job runners by operation type: the only code that executes jobs (worker side only)."""

from __future__ import annotations

from ktrdr.operations.model import OperationType
from ktrdr.worker.job import Runner
from ktrdr.worker.runners.backtest import run_backtest_job
from ktrdr.worker.runners.data_download import run_data_download
from ktrdr.worker.runners.diagnostic import run_diagnostic

RUNNERS: dict[OperationType, Runner] = {
    OperationType.BACKTESTING: run_backtest_job,
    OperationType.DATA_DOWNLOAD: run_data_download,
    OperationType.DIAGNOSTIC: run_diagnostic,
}


def runner_for(op_type: OperationType) -> Runner | None:
    return RUNNERS.get(op_type)
