"""Exceptions raised by the engine; every message says what to do about it."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of all engine errors.

    The message is for the user: it names what is missing (symbol, timeframe, model and
    version), never a directory of the machine that ran it. ``where`` keeps the location
    (a data or model directory) for the operator's log.
    """

    def __init__(self, *args: object, where: str | None = None) -> None:
        super().__init__(*args)
        self.where = where


class DataNotFoundError(EngineError):
    """No stored bars for a symbol/timeframe (or none in the requested range)."""


class DataValidationError(EngineError):
    """Bars failed validation; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[str], *, source: str = "data") -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = len(self.problems) - 50
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{shown}{tail}")


class StrategyError(EngineError):
    """A strategy file is invalid; ``problems`` lists each problem with how to fix it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid strategy: {len(self.problems)} problem(s):\n{shown}")


class BacktestCancelled(EngineError):
    """The caller's ``should_cancel`` callback asked the backtest to stop."""


class TrainingCancelled(EngineError):
    """The caller's ``should_stop`` callback asked the training run to stop."""


class TrainingUnavailable(EngineError):
    """PyTorch is not installed, so models can be neither trained nor used."""


class ModelNotFoundError(EngineError):
    """No trained model with the requested name/version (or no model store was given)."""
