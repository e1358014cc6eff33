"""Which job kinds a worker offers: every kind with a runner whose extras are installed."""

from __future__ import annotations

import importlib.util

import pytest

from ktrdr.operations.model import OperationType
from ktrdr.worker.app import resolve_kinds
from ktrdr.worker.runners import RUNNERS


def test_with_pytorch_a_worker_offers_every_kind_with_a_runner() -> None:
    assert importlib.util.find_spec("torch") is not None, "the test environment has the ml extra"
    # Chunk types ride on a kind (a sweep chunk on backtesting): they are not offered.
    assert resolve_kinds([]) == [k for k in RUNNERS if k != OperationType.SWEEP_CHUNK]
    assert OperationType.TRAINING in resolve_kinds([])


def test_without_pytorch_training_is_not_offered_and_asking_for_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "torch" else real_find_spec(name, *args),
    )
    assert resolve_kinds([]) == [
        OperationType.BACKTESTING, OperationType.DATA_DOWNLOAD, OperationType.DIAGNOSTIC,
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"cannot run training: PyTorch is not installed") as exc:
        resolve_kinds([OperationType.BACKTESTING, OperationType.TRAINING])
    assert "pip install 'ktrdr[ml]'" in str(exc.value)


def test_every_operation_type_has_a_job_spec_and_a_runner_or_is_driven_by_the_backend() -> None:
    from ktrdr.jobs.specs import get_spec, types_run_by

    for op_type in OperationType:
        spec = get_spec(op_type)
        assert spec.op_type == op_type
        assert (op_type in RUNNERS) != spec.backend_driven, op_type
    assert get_spec(OperationType.SWEEP_CHUNK).worker_kind == OperationType.BACKTESTING
    assert types_run_by([OperationType.BACKTESTING]) == [
        OperationType.BACKTESTING, OperationType.SWEEP_CHUNK,
    ]  # fmt: skip
