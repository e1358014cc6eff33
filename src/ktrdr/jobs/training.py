"""Parameters of a training run, validated before anything is queued."""

from __future__ import annotations

from pydantic import Field, model_validator

from ktrdr.jobs.strategy_run import StrategyRunParams


class TrainingParams(StrategyRunParams):
    epochs: int | None = Field(
        None, ge=1, le=1000, description="default: the strategy's training.epochs"
    )

    @model_validator(mode="after")
    def _trainable(self) -> TrainingParams:
        strategy = self.parsed_strategy()
        if not strategy.fuzzy_sets:
            raise ValueError(
                f"strategy {strategy.name!r} has no fuzzy_sets: a model learns from fuzzy "
                "memberships, so add fuzzy_sets over its indicators (see the fuzzy_nn example)"
            )
        return self
