"""Job runners by operation type: the only code that executes jobs (worker side only)."""

from __future__ import annotations

from ktrdr.operations.model import OperationType
from ktrdr.worker.job import Runner
from ktrdr.worker.runners.diagnostic import run_diagnostic

RUNNERS: dict[OperationType, Runner] = {
    OperationType.DIAGNOSTIC: run_diagnostic,
}


def runner_for(op_type: OperationType) -> Runner | None:
    return RUNNERS.get(op_type)
