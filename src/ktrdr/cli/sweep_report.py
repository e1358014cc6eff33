"""Self-contained HTML reports for campaigns (inline SVG, no network, no JS): the parts
are ktrdr.reports.campaigns', which the web console's report pages show as well."""

from __future__ import annotations

import html
from typing import Any

from ktrdr.reports import efficiency_text, fmt
from ktrdr.reports.campaigns import sweep_sections, walkforward_sections

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse}th,td{padding:2px 10px;border-bottom:1px solid #ddd;
text-align:right}th{text-align:left}svg text{font-size:11px}td.when{white-space:nowrap}"""


def sweep_html(
    op: dict[str, Any], rows: list[dict[str, Any]], *, x: str | None, y: str | None, top: int
) -> str:
    summary = op.get("result") or {}
    objective = summary.get("objective", "sharpe")
    parts = sweep_sections(summary, rows, x=x, y=y, top=top)
    title = html.escape(f"{summary.get('method', '')} sweep {op['id']} by {objective}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style>
</head><body><h1>{title}</h1>
<p>{len(rows)} combinations evaluated; objective <b>{html.escape(objective)}</b>
({html.escape(summary.get("direction", ""))})</p>
<h2>Objective over two parameters</h2>{parts["heatmap"]}
<h2>Sensitivity per parameter</h2>{parts["sensitivity"]}
<h2>Top {top}</h2>{parts["top"]}
<h2>Diagnostics</h2>{parts["diagnostics"]}</body></html>
"""


def walkforward_html(op: dict[str, Any]) -> str:
    result = op.get("result") or {}
    parts = walkforward_sections(result)
    stitched = result.get("stitched") or {}
    title = html.escape(f"walk-forward {op['id']} by {result.get('objective', '')}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style>
</head><body><h1>{title}</h1>
<p>stitched out-of-sample return {fmt(stitched.get("total_return_pct"), "{:.2f}")}%,
walk-forward efficiency {html.escape(efficiency_text(result))}</p>
<h2>Stitched out-of-sample equity (dashed: window starts)</h2>{parts["equity"]}
<h2>Windows</h2>{parts["windows"]}</body></html>
"""
