"""Per-type parameter models and worker start paths."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ktrdr.operations.model import OperationType
from ktrdr.validation_messages import field_problems, summarise


class ParamsError(ValueError):
    """Parameters that do not fit the operation type; the message says how to fix them."""


@dataclass(frozen=True)
class JobSpec:
    op_type: OperationType
    params_model: type[BaseModel]
    # Worker route that starts this kind of job; `/backtests/start` is the seed's name.
    worker_start_path: str

    # Backtests and training runs need stored bars: the backend checks the data catalog
    # before queueing.
    needs_data: bool = False
    # Backtests of model-driven strategies need a trained model that fits the run.
    needs_model: bool = False
    # Jobs that read an uploaded file (``upload_key`` + ``upload_sha256``): the backend
    # checks the upload's content with this at submission (a ValueError says what is
    # wrong, so a bad file is a 4xx) and gets back the parameters to store.
    check_upload: Callable[[dict[str, Any], bytes], dict[str, Any]] | None = None
    # Which worker kind runs it: a sweep chunk runs on workers that offer `backtesting`
    # (None: its own type). The dispatcher and workers read this, never special cases.
    runs_on: OperationType | None = None
    # Driven by the backend itself (campaign parents): never dispatched to a worker.
    backend_driven: bool = False

    @property
    def worker_kind(self) -> OperationType | None:
        """The kind a worker must offer to run this type; None for backend-driven types."""
        return None if self.backend_driven else (self.runs_on or self.op_type)


def _build_specs() -> dict[OperationType, JobSpec]:
    # Imported here: the parameter modules import this one for ParamsError.
    from ktrdr.jobs.backtest import BacktestParams
    from ktrdr.jobs.campaigns import SweepChunkParams, SweepParams, WalkforwardParams
    from ktrdr.jobs.data_download import DataDownloadParams, check_uploaded_csv
    from ktrdr.jobs.diagnostic import DiagnosticParams
    from ktrdr.jobs.training import TrainingParams

    specs = [
        JobSpec(OperationType.DIAGNOSTIC, DiagnosticParams, "/diagnostics/start"),
        JobSpec(
            OperationType.BACKTESTING,
            BacktestParams,
            "/backtests/start",
            needs_data=True,
            needs_model=True,
        ),
        JobSpec(
            OperationType.DATA_DOWNLOAD,
            DataDownloadParams,
            "/data/downloads/start",
            check_upload=check_uploaded_csv,
        ),
        JobSpec(OperationType.TRAINING, TrainingParams, "/training/start", needs_data=True),
        JobSpec(OperationType.SWEEP, SweepParams, "", needs_data=True, backend_driven=True),
        JobSpec(
            OperationType.WALKFORWARD, WalkforwardParams, "", needs_data=True, backend_driven=True
        ),
        JobSpec(
            OperationType.SWEEP_CHUNK,
            SweepChunkParams,
            "/sweeps/chunks/start",
            runs_on=OperationType.BACKTESTING,
        ),
    ]
    return {spec.op_type: spec for spec in specs}


_SPECS: dict[OperationType, JobSpec] = {}


def _specs() -> dict[OperationType, JobSpec]:
    if not _SPECS:
        _SPECS.update(_build_specs())
    return _SPECS


def get_spec(op_type: OperationType) -> JobSpec:
    try:
        return _specs()[op_type]
    except KeyError:
        available = ", ".join(sorted(t.value for t in _specs()))
        raise ParamsError(
            f"operation type {op_type.value!r} cannot be run by this version; "
            f"available types: {available}"
        ) from None


def types_run_by(kinds: list[OperationType]) -> list[OperationType]:
    """Every operation type a worker offering ``kinds`` runs (e.g. backtesting: also chunks)."""
    return [t for t, spec in _specs().items() if spec.worker_kind in kinds]


def validate_params(op_type: OperationType, params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise parameters; raises ParamsError with every problem listed."""
    spec = get_spec(op_type)
    try:
        model = spec.params_model.model_validate(params)
    except ValidationError as exc:
        raise ParamsError(describe_validation_error(exc, f"{op_type.value} parameters")) from exc
    return model.model_dump(mode="json")


def describe_validation_error(exc: ValidationError, what: str) -> str:
    return summarise(what, field_problems(exc.errors()))


def params_hash(op_type: OperationType, params: dict[str, Any]) -> str:
    """Stable digest of a request, to tell a retry from a different request."""
    canonical = json.dumps({"type": op_type.value, "params": params}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
