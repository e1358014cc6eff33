"""Report pages by operation type: what the detail page adds once an operation completed.

A new operation type gets its report by registering a `ReportPage` here: the campaign
types (`sweep`, `walkforward`: objective heatmap, sensitivity, top-N, walk-forward OOS
curve) register theirs when they land; until then their operations show the generic
detail page (parameters, timeline, raw result figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ktrdr.cli.report import STAT_ROWS
from ktrdr.operations.schemas import OperationPublic


@dataclass(frozen=True)
class ReportPage:
    template: str  # included in the detail page when the operation has completed
    scripts: tuple[str, ...] = ()  # console scripts the report needs (besides Plotly)
    charts: bool = True  # loads Plotly
    context: Callable[[OperationPublic], dict[str, Any]] = field(default=lambda op: {})


def _backtest_context(op: OperationPublic) -> dict[str, Any]:
    result = op.result or {}
    stats = result.get("statistics") or {}
    rows = [(key, label, pattern, stats.get(key)) for key, label, pattern in STAT_ROWS]
    return {"stat_rows": rows, "statistics": stats, "result": result}


def _training_context(op: OperationPublic) -> dict[str, Any]:
    result = op.result or {}
    evaluation = result.get("evaluation") or {}
    matrix = evaluation.get("confusion_matrix") or {}
    cells = matrix.get("rows_true_columns_predicted") or []
    largest = max((v for row in cells for v in row), default=0) or 1
    return {
        "result": result,
        "evaluation": evaluation,
        "classes": matrix.get("classes") or [],
        "matrix": cells,
        "matrix_max": largest,
    }


REPORTS: dict[str, ReportPage] = {
    "backtesting": ReportPage(
        "report_backtest.html", ("report_backtest.js",), True, _backtest_context
    ),
    "training": ReportPage(
        "report_training.html", ("report_training.js",), True, _training_context
    ),
}


def report_for(op: OperationPublic) -> ReportPage | None:
    return REPORTS.get(op.type.value)
