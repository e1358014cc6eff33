from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ktrdr.operations.model import (
    IllegalTransition,
    OperationStatus,
    OperationType,
    check_transition,
    new_operation_id,
)

S = OperationStatus
LEGAL = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.PENDING),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_check_transition_allows_exactly_the_documented_moves(
    current: OperationStatus, target: OperationStatus
) -> None:
    if (current, target) in LEGAL:
        check_transition("op_x", current, target)
    else:
        with pytest.raises(IllegalTransition) as info:
            check_transition("op_x", current, target)
        assert f"is {current} and cannot become {target}" in str(info.value)


def test_illegal_transition_message_lists_allowed_moves() -> None:
    with pytest.raises(IllegalTransition, match="allowed from completed: none"):
        check_transition("op_x", S.COMPLETED, S.RUNNING)


def test_new_operation_id_has_type_timestamp_and_hex_suffix() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    op_id = new_operation_id(OperationType.BACKTESTING, now)
    assert re.fullmatch(r"op_backtesting_20260102_030405_[0-9a-f]{8}", op_id)
    assert new_operation_id(OperationType.BACKTESTING, now) != op_id
