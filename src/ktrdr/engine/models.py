"""What a backtest needs of a trained model, and of the place models come from.

Decisions are typed against these protocols, so the backtest receives its model from the
caller (the worker passes its model store) and never imports the training package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ktrdr.engine.model_choice import ModelSummary


class DecisionModel(Protocol):
    """A trained classifier over a strategy's feature matrix."""

    @property
    def feature_names(self) -> list[str]: ...

    @property
    def info(self) -> Any: ...

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]: ...


class ModelSource(Protocol):
    """Where models are loaded from by name and version (None: the default version)."""

    def describe(self, name: str, version: int | None = None) -> ModelSummary:
        """The version ``load`` gives, from its metadata (no weights loaded)."""
        ...

    def load(self, name: str, version: int | None = None) -> DecisionModel: ...
