"""docs/strategies.md is generated from the code: regenerating it gives the same file."""

from __future__ import annotations

from pathlib import Path

from ktrdr.engine.indicators.registry import INDICATORS
from ktrdr.engine.strategy.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def test_strategy_reference_regenerates_identically() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/strategies.md is stale: python -m ktrdr.engine.strategy.reference "
        "> docs/strategies.md"
    )


def test_reference_names_every_indicator_output_and_shape() -> None:
    text = render()
    for name, spec in INDICATORS.items():
        assert f"#### `{name}`" in text
        for output in spec.outputs:
            assert f"`<id>.{output}`" in text
    assert "`bb.percent_b`" in text and "`macd.histogram`" in text
    assert "| `left_shoulder` | 2: `[a, b] with a <= b: 1 below a, 0 above b` |" in text
    assert "| `period` | int | `14` | ≥ 1, ≤ 10000 |" in text  # rsi's period
    assert "`allow_other_symbols`" in text and "| `SELL` | go flat | go short" in text
