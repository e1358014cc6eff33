"""Hand-made training rows: four uniform features and a label that follows the first,
with train | validation | test splits and purge gaps of the label horizon (10 rows).
Small enough that a model trains in milliseconds, regular enough that counts can be
worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr.engine.training import TrainingData


def training_rows(n: int = 300) -> TrainingData:
    rng = np.random.default_rng(3)
    X = rng.random((n, 4), dtype=np.float32)
    y = (X[:, 0] * 3).astype(np.int64).clip(0, 2)
    return TrainingData(
        X=X, y=y, timestamps=pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
        feature_names=[f"f{i}" for i in range(4)], train=slice(0, 200),
        validation=slice(210, 250), test=slice(260, 300), label_horizon=10,
        label_threshold=0.002, sample_weight=np.ones(n, dtype=np.float32),
    )  # fmt: skip
