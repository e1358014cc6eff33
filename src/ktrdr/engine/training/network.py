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


def build_network(
    kind: str, n_features: int, hidden_layers: list[int], sequence_length: int
) -> torch.nn.Module:
    """The network a strategy's ``training.model`` names."""
    if kind == "mlp":
        return build_mlp(n_features, hidden_layers)
    return _sequence_classifier(kind, n_features, hidden_layers, sequence_length)


def _sequence_classifier(
    kind: str, n_features: int, hidden_layers: list[int], sequence_length: int
) -> torch.nn.Module:
    require_torch()
    from torch import nn

    class SequenceClassifier(nn.Module):
        """An LSTM or GRU over the last ``sequence_length`` rows; the last step's hidden
        state gives one logit per class."""

        def __init__(self) -> None:
            super().__init__()
            rnn = nn.LSTM if kind == "lstm" else nn.GRU
            self.rnn = rnn(n_features, hidden_layers[0], len(hidden_layers), batch_first=True)
            self.head = nn.Linear(hidden_layers[0], len(CLASS_NAMES))
            self.sequence_length = sequence_length

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(x)
            return self.head(out[:, -1, :])

    return SequenceClassifier()


def sequence_windows(X: torch.Tensor, length: int) -> torch.Tensor:
    """(n - length + 1, length, features) windows; window k ends at row k + length - 1."""
    return X.unfold(0, length, 1).permute(0, 2, 1)


def predict_proba(module: torch.nn.Module, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Class probabilities (n, 3) for feature rows ``X`` (n, n_features), in row order.

    A sequence model sees each row with the ``sequence_length - 1`` rows before it; the
    first rows, without that much history, get NaN (no decision)."""
    require_torch()
    import torch

    rows = torch.as_tensor(np.asarray(X, dtype=np.float32))
    length = getattr(module, "sequence_length", None)
    # No dropout or batch norm, so train/eval mode makes no difference here.
    with torch.no_grad():
        if length is None:
            return torch.softmax(module(rows), dim=1).numpy().astype(np.float64)
        out = np.full((len(rows), len(CLASS_NAMES)), np.nan)
        if len(rows) >= length:
            windows = sequence_windows(rows, length)
            out[length - 1 :] = torch.softmax(module(windows), dim=1).numpy()
        return out
