"""Where a worker keeps bars and trained models: under its data home, shared by its jobs."""

from __future__ import annotations

from pathlib import Path

from ktrdr.engine.data import DataStore
from ktrdr.engine.training import ModelStore


def data_store(data_home: str) -> DataStore:
    return DataStore(Path(data_home) / "data")


def model_store(data_home: str) -> ModelStore:
    return ModelStore(Path(data_home) / "models")
