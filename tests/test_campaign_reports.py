"""The campaign pictures shared by `ktrdr sweep show --html` and the console: the values
they draw, and user text (a categorical parameter's value, a parameter's name) escaped."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ktrdr.reports import efficiency_text
from ktrdr.reports.campaigns import sweep_sections, walkforward_sections

EVIL = "<script>alert(1)</script>"


def row(n: int, fast: Any, slow: Any, sharpe: float | None) -> dict[str, Any]:
    return {
        "combination": n,
        "params": {"indicators.f.params.period": fast, "indicators.s.params.kind": slow},
        "statistics": {"sharpe_ratio": sharpe, "total_return_pct": 1.5, "num_trades": 7},
    }


def test_best_per_cell_drawn_and_user_text_escaped() -> None:
    rows = [
        row(0, 5, "sma", 0.5),
        row(1, 5, "sma", 0.9),
        row(2, 10, EVIL, -0.2),
        row(3, 10, "sma", None),
    ]
    parts = sweep_sections({"diagnostics": {"pbo": 0.25}}, rows, top=2)
    heat = parts["heatmap"]
    assert EVIL not in heat and "&lt;script&gt;" in heat
    # Cells: (5, sma) best of 0.5 and 0.9; (10, EVIL) -0.2; grey: (10, sma) without a
    # value and (5, EVIL), not tried.
    assert "f.period=5, s.kind=sma: 0.9000" in heat
    assert heat.count("<rect") == 4 and heat.count('fill="#ddd"') == 2
    top = parts["top"]
    assert EVIL not in top and top.index("<td>1</td>") < top.index("<td>0</td>")
    assert "<td>2</td>" not in top  # top 2 only
    assert "<th>pbo</th><td>0.2500</td>" in parts["diagnostics"]


def test_an_unknown_axis_names_the_choices() -> None:
    with pytest.raises(ValueError, match=re.escape("choose one of f.period, s.kind")):
        sweep_sections({}, [row(0, 5, "sma", 0.1)], x="nope")


def test_walkforward_marks_each_window_start() -> None:
    result = {
        "windows": [
            {"window": 0, "test_start": "2020-01-02T08:00:00+00:00",
             "test_end": "2020-01-03T07:00:00+00:00",
             "params": {"indicators.f.params.period": EVIL}, "in_sample_objective": 1.0,
             "out_of_sample_objective": 0.5, "out_of_sample": {"total_return_pct": -1.234}},
            {"window": 1, "test_start": "2020-01-03", "test_end": "2020-01-04",
             "params": {"indicators.f.params.period": 5}, "in_sample_objective": 0.8,
             "out_of_sample_objective": None},
        ],
        "stitched_equity": [["2020-01-02", 100.0], ["2020-01-03", 101.0], ["2020-01-04", 99.0]],
    }  # fmt: skip
    parts = walkforward_sections(result)
    assert parts["equity"].count("<line") == 2 and parts["equity"].count("<polyline") == 1
    assert EVIL not in parts["windows"] and "<th>f.period</th>" in parts["windows"]
    assert "<td>&lt;script&gt;" in parts["windows"]
    # Times as people read them (UTC, to the minute), the window's out-of-sample return.
    assert (
        '<td class="when">2020-01-02 08:00</td><td class="when">2020-01-03 07:00</td>'
        in (parts["windows"])
    )
    assert "<td>0.5000</td><td>-1.23</td></tr>" in parts["windows"]
    assert "<td>0.5000</td><tr>" not in parts["windows"] and "<td>n/a</td>" in parts["windows"]


def test_a_walkforward_without_efficiency_says_why() -> None:
    windows = [{"in_sample_objective": -1.5}, {"in_sample_objective": 0.5}]
    assert efficiency_text({"walkforward_efficiency": 0.51234, "windows": windows}) == "0.512"
    assert efficiency_text({"walkforward_efficiency": None, "windows": windows}) == (
        "n/a (the in-sample objective is not positive: no edge to carry over)"
    )
    # Undefined for another reason (no windows, a missing objective): no invented cause.
    assert efficiency_text({"walkforward_efficiency": None, "windows": []}) == "n/a"
    positive = [{"in_sample_objective": 1.0}, {"in_sample_objective": None}]
    assert efficiency_text({"walkforward_efficiency": None, "windows": positive}) == "n/a"
