"""Parameters of a training run, validated before anything is queued."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from ktrdr.engine.stacking import stacking_problem
from ktrdr.jobs.strategy_run import StrategyRunParams


class TrainingParams(StrategyRunParams):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"strategy": "fuzzy_nn", "symbol": "EURUSD", "timeframe": "1h", "epochs": 20}
            ]
        }
    )

    epochs: int | None = Field(
        None, ge=1, le=1000, description="default: the strategy's training.epochs"
    )
    checkpoint_every: int = Field(5, ge=1, le=1000, description="epochs between checkpoints")
    resume_from: str | None = Field(
        None,
        pattern=r"^op_training_\d{8}_\d{6}_[0-9a-f]{8}$",
        description="a cancelled or failed training run whose checkpoint this run continues "
        "(set by POST /operations/{id}/resume)",
    )

    @model_validator(mode="after")
    def _trainable(self) -> TrainingParams:
        strategy = self.parsed_strategy()
        if not strategy.fuzzy_sets:
            raise ValueError(
                f"strategy {strategy.name!r} has no fuzzy_sets: a model learns from fuzzy "
                "memberships, so add fuzzy_sets over its indicators (see the fuzzy_nn example)"
            )
        problem = stacking_problem(strategy, len(self.data_keys()))
        if problem:
            raise ValueError(problem)
        return self
