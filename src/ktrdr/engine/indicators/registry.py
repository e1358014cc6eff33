"""Indicators by name with typed parameters, so strategy files can refer to them."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import ValidationError

from ktrdr.engine.indicators.catalog import INDICATORS
from ktrdr.engine.indicators.spec import IndicatorSpec, Outputs, Params, price
from ktrdr.engine.timeframes import did_you_mean

__all__ = ["INDICATORS", "IndicatorSpec", "Outputs", "Params", "price"]


def get_indicator(name: str) -> IndicatorSpec:
    """The indicator called ``name``; ValueError with 'did you mean' and the known names."""
    spec = INDICATORS.get(name.lower())
    if spec is None:
        raise ValueError(
            f"unknown indicator {name!r}{did_you_mean(name.lower(), tuple(INDICATORS))}; "
            f"known indicators: {', '.join(INDICATORS)}"
        )
    return spec


def parse_params(spec: IndicatorSpec, raw: dict[str, Any]) -> tuple[Params | None, list[str]]:
    """Validate ``raw`` against ``spec``'s parameters; return (params, problems)."""
    try:
        return spec.params_model.model_validate(raw), []
    except ValidationError as exc:
        fields = tuple(spec.params_model.model_fields)
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(fields) or "none"
                problems.append(
                    f"unknown parameter {key!r} for indicator {spec.name!r}"
                    f"{did_you_mean(key, fields)}; its parameters are: {allowed}"
                )
            else:
                where = f"parameter {key!r}" if key else "parameters"
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{where} of indicator {spec.name!r}: {msg}")
        return None, problems


def compute_indicator(spec: IndicatorSpec, params: Params, bars: pd.DataFrame) -> Outputs:
    """Run ``spec`` on ``bars``; returns one Series per output name."""
    return spec.compute(bars, params)
