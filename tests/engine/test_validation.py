"""The purged k-fold of training.validation on hand-made rows: fold sizes, purge and
embargo counts by hand, class balance, determinism, and the schema's refusals."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from ktrdr.engine.strategy.schema import TrainingConfig, ValidationConfig
from ktrdr.engine.training.validation import class_balance, cross_validate
from tests.support.training_rows import training_rows


def test_folds_purge_the_label_windows_and_embargo_after_each_fold() -> None:
    data = training_rows()
    config = TrainingConfig(
        epochs=3, hidden_layers=[8], batch_size=64,
        validation=ValidationConfig(method="purged_kfold", folds=3, embargo=5),
    )  # fmt: skip
    result = cross_validate(data, config)
    # 250 rows before the test split in folds of 84, 83, 83 (rows 0-83, 84-166, 167-249);
    # a label window is 10 rows: fold 2 purges 74-83 before it and 167-176 after it, then
    # embargoes 177-181.
    got = [
        (f["test_rows"], f["train_rows"], f["purged_rows"], f["embargoed_rows"])
        for f in result["folds"]
    ]
    assert got == [(84, 151, 10, 5), (83, 142, 20, 5), (83, 157, 10, 0)]
    assert result["folds"][1]["test_start"] == data.timestamps[84].isoformat()
    assert result["folds"][1]["test_end"] == data.timestamps[166].isoformat()
    assert result["folds"][0]["class_balance"]["test"] == class_balance(data.y[:84])
    accuracy = [f["accuracy"] for f in result["folds"]]
    assert result["mean_accuracy"] == pytest.approx(np.mean(accuracy))
    assert result["std_accuracy"] == pytest.approx(np.std(accuracy))
    assert cross_validate(data, config) == result, "seeded: the same folds every time"


def test_class_balance_is_each_class_share() -> None:
    assert class_balance(np.array([0, 1, 1, 2], dtype=np.int64)) == {
        "SELL": 0.25, "HOLD": 0.5, "BUY": 0.25,
    }  # fmt: skip
    assert class_balance(np.array([], dtype=np.int64)) == {"SELL": 0, "HOLD": 0, "BUY": 0}


def test_the_schema_refuses_unknown_methods_and_bad_folds() -> None:
    with pytest.raises(ValidationError, match="'chronological' or 'purged_kfold'"):
        TrainingConfig.model_validate({"validation": {"method": "kfold"}})
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        TrainingConfig.model_validate({"validation": {"method": "purged_kfold", "folds": 1}})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        TrainingConfig.model_validate({"validation": {"embargo_bars": 3}})
