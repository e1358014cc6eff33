"""Technical indicators (vectorised) and a registry of them by name."""

from ktrdr.engine.indicators.registry import (
    INDICATORS,
    IndicatorSpec,
    Params,
    compute_indicator,
    get_indicator,
    parse_params,
    price,
)

__all__ = [
    "INDICATORS",
    "IndicatorSpec",
    "Params",
    "compute_indicator",
    "get_indicator",
    "parse_params",
    "price",
]
