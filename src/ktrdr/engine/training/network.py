"""The neural network: an MLP over the fuzzy memberships with one output per class.

PyTorch is an optional dependency (the ``ml`` extra), so it is imported inside functions;
``require_torch`` turns its absence into an error that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ktrdr.engine.errors import TrainingUnavailable
from ktrdr.engine.training.labels import CLASS_NAMES

if TYPE_CHECKING:
    import torch

TORCH_MISSING = (
    "PyTorch is not installed; install the ml extra: pip install 'ktrdr[ml]' "
    "(CPU build: pip install torch==2.13.0)"
)


def require_torch() -> None:
    """Raise TrainingUnavailable (with the install command) when PyTorch is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TrainingUnavailable(TORCH_MISSING) from None


def build_mlp(n_features: int, hidden_layers: list[int]) -> torch.nn.Sequential:
    """Linear + ReLU per hidden layer, then a linear layer giving one logit per class
    (softmax is applied by the loss in training and by ``predict_proba``)."""
    require_torch()
    from torch import nn

    layers: list[nn.Module] = []
    width = n_features
    for size in hidden_layers:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, len(CLASS_NAMES)))
    return nn.Sequential(*layers)


def predict_proba(module: torch.nn.Module, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Class probabilities (n, 3) for feature rows ``X`` (n, n_features)."""
    require_torch()
    import torch

    rows = torch.as_tensor(np.asarray(X, dtype=np.float32))
    # No dropout or batch norm in the MLP, so train/eval mode makes no difference here.
    with torch.no_grad():
        proba = torch.softmax(module(rows), dim=1)
    return proba.numpy().astype(np.float64)
