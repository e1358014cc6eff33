"""Report pages by operation type: what the detail page adds once an operation completed.

A new operation type gets its report by registering a `ReportPage` here; a type without
one shows the generic detail page (parameters, timeline, raw result figures). The campaign
reports (sweep: objective heatmap, sensitivity, top-N, diagnostics; walk-forward: stitched
out-of-sample curve with its windows) are the same SVG and tables as `ktrdr sweep show
--html`, drawn on the server from ktrdr.reports.campaigns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from ktrdr.artifacts import ArtifactStore
from ktrdr.campaigns.results import CampaignResults
from ktrdr.cli.report import STAT_ROWS, symbol_columns
from ktrdr.operations.results import artifact_parts, result_part
from ktrdr.operations.schemas import OperationPublic
from ktrdr.operations.service import OperationService
from ktrdr.reports import efficiency_text
from ktrdr.reports.campaigns import sweep_sections, walkforward_sections

# Rows of the top-N table on a sweep's report (the whole table is one download away).
TOP_N = 20


@dataclass(frozen=True)
class ReportSources:
    """What a report's context may read besides the operation itself."""

    operations: OperationService
    artifacts: ArtifactStore


@dataclass(frozen=True)
class ReportPage:
    template: str  # included in the detail page when the operation has completed
    scripts: tuple[str, ...] = ()  # console scripts the report needs (besides Plotly)
    charts: bool = True  # loads Plotly
    context: Callable[[OperationPublic, ReportSources], dict[str, Any]] = field(
        default=lambda op, sources: {}
    )


def _backtest_context(op: OperationPublic, sources: ReportSources) -> dict[str, Any]:
    result = op.result or {}
    stats = result.get("statistics") or {}
    rows = [(key, label, pattern, stats.get(key)) for key, label, pattern in STAT_ROWS]
    per_symbol: list[dict[str, Any]] = []
    if "per_symbol" in artifact_parts(result):  # a universe or a portfolio: one row a symbol
        per_symbol = result_part(result, "per_symbol", sources.artifacts)
    return {
        "stat_rows": rows,
        "statistics": stats,
        "result": result,
        "per_symbol": per_symbol,
        "symbol_columns": symbol_columns(result),
    }


def _training_context(op: OperationPublic, sources: ReportSources) -> dict[str, Any]:
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


def _safe(parts: dict[str, str]) -> dict[str, Markup]:
    # Built with every user-supplied string escaped (ktrdr.reports.campaigns), so they are
    # inserted as markup (tests/test_campaign_reports.py: HTML in a parameter is text).
    return {name: Markup(fragment) for name, fragment in parts.items()}


def _sweep_context(op: OperationPublic, sources: ReportSources) -> dict[str, Any]:
    summary = op.result or {}
    stored = CampaignResults(sources.operations.store).list(op.id, stage="sweep")
    rows = [r.model_dump() for r in stored]
    return {
        "result": summary,
        "evaluated": len(rows),
        "top_n": TOP_N,
        "parts": _safe(sweep_sections(summary, rows, top=TOP_N)),
    }


def _walkforward_context(op: OperationPublic, sources: ReportSources) -> dict[str, Any]:
    result = op.result or {}
    return {
        "result": result,
        "parts": _safe(walkforward_sections(result)),
        "efficiency": efficiency_text(result),
    }


REPORTS: dict[str, ReportPage] = {
    "backtesting": ReportPage(
        "report_backtest.html", ("report_backtest.js",), True, _backtest_context
    ),
    "training": ReportPage(
        "report_training.html", ("report_training.js",), True, _training_context
    ),
    "sweep": ReportPage("report_sweep.html", (), False, _sweep_context),
    "walkforward": ReportPage("report_walkforward.html", (), False, _walkforward_context),
}


def report_for(op: OperationPublic) -> ReportPage | None:
    return REPORTS.get(op.type.value)
