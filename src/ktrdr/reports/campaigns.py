"""Campaign pictures as inline SVG and HTML tables (no script, no network).

Sweep: a heatmap of the objective over two parameters, the objective's sensitivity to
each parameter (best and mean per value), the top-N table and the diagnostics.
Walk-forward: the stitched out-of-sample equity curve with the window boundaries marked,
and the per-window table. `sweep_sections` / `walkforward_sections` assemble them for a
page: the CLI's HTML file and the console's report both show exactly these.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from typing import Any

from ktrdr.reports import diagnostic_text, fmt, utc_minute


def _short(path: str) -> str:
    parts = path.split(".")
    if len(parts) == 4 and parts[0] == "indicators" and parts[2] == "params":
        return f"{parts[1]}.{parts[3]}"
    return path


def _value(row: dict[str, Any], key: str) -> float | None:
    v = row["statistics"].get(key)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def _colour(t: float) -> str:
    """0 -> red, 0.5 -> pale, 1 -> green."""
    t = min(max(t, 0.0), 1.0)
    if t < 0.5:
        u = t / 0.5
        return f"rgb(215,{int(48 + u * 190)},{int(39 + u * 190)})"
    u = (t - 0.5) / 0.5
    return f"rgb({int(238 - u * 212)},{int(238 - u * 86)},{int(229 - u * 149)})"


def _sorted_values(values: list[Any]) -> list[Any]:
    unique = list(dict.fromkeys(values))
    try:
        return sorted(unique)
    except TypeError:
        return unique


def resolve_axis(name: str | None, paths: list[str], fallback: int) -> str | None:
    if name is None:
        return paths[fallback] if len(paths) > fallback else None
    for path in paths:
        if name in (path, _short(path)):
            return path
    choices = ", ".join(_short(p) for p in paths)
    raise ValueError(f"no searched parameter {name!r}; choose one of {choices}")


def heatmap_svg(rows: list[dict[str, Any]], x: str, y: str, key: str) -> str:
    """Best objective per (x, y) cell; empty cells are grey (infeasible or not tried)."""
    cells: dict[tuple[Any, Any], float] = {}
    for row in rows:
        v = _value(row, key)
        cell = (row["params"][x], row["params"][y])
        if v is not None and (cell not in cells or v > cells[cell]):
            cells[cell] = v
    xs = _sorted_values([r["params"][x] for r in rows])
    ys = _sorted_values([r["params"][y] for r in rows])
    if not cells:
        return "<p>no defined objective values to map</p>"
    low, high = min(cells.values()), max(cells.values())
    span = (high - low) or 1.0
    cw, ch, left, top = max(14, 700 // max(len(xs), 1)), max(14, 360 // max(len(ys), 1)), 70, 10
    parts = []
    for j, yv in enumerate(reversed(ys)):
        for i, xv in enumerate(xs):
            v = cells.get((xv, yv))
            fill = "#ddd" if v is None else _colour((v - low) / span)
            tip = f"{_short(x)}={xv}, {_short(y)}={yv}: " + ("n/a" if v is None else f"{v:.4f}")
            parts.append(
                f'<rect x="{left + i * cw}" y="{top + j * ch}" width="{cw}" height="{ch}" '
                f'fill="{fill}"><title>{html.escape(tip)}</title></rect>'
            )
        parts.append(f'<text x="{left - 4}" y="{top + j * ch + ch / 2 + 4}" '
                     f'text-anchor="end">{html.escape(str(yv))}</text>')  # fmt: skip
    step = max(1, len(xs) // 20)
    for i, xv in enumerate(xs):
        if i % step == 0:
            parts.append(f'<text x="{left + i * cw + cw / 2}" y="{top + len(ys) * ch + 14}" '
                         f'text-anchor="middle">{html.escape(str(xv))}</text>')  # fmt: skip
    width, height = left + len(xs) * cw + 10, top + len(ys) * ch + 40
    legend = f"{_short(x)} →  (rows: {_short(y)}; {low:.3f} red … {high:.3f} green)"
    parts.append(f'<text x="{left}" y="{height - 4}">{html.escape(legend)}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" width="{min(width, 1000)}" role="img" '
            f'aria-label="heatmap">{"".join(parts)}</svg>')  # fmt: skip


_DASHED = 'stroke-dasharray="4 3"'


def sensitivity_svg(rows: list[dict[str, Any]], path: str, key: str) -> str:
    """Best (solid) and mean (dashed) objective per value of one parameter."""
    by_value: dict[Any, list[float]] = defaultdict(list)
    for row in rows:
        v = _value(row, key)
        if v is not None:
            by_value[row["params"][path]].append(v)
    values = _sorted_values(list(by_value))
    if len(values) < 2:
        return f"<p>{html.escape(_short(path))}: fewer than two values with results</p>"
    best = [max(by_value[v]) for v in values]
    mean = [sum(by_value[v]) / len(by_value[v]) for v in values]
    low, high = min(mean + best), max(mean + best)
    span = (high - low) or 1.0
    width, height, pad = 460, 180, 30

    def line(series: list[float], dash: str) -> str:
        pts = " ".join(
            f"{pad + i * (width - 2 * pad) / (len(series) - 1):.1f},"
            f"{height - pad - (s - low) / span * (height - 2 * pad):.1f}"
            for i, s in enumerate(series)
        )
        return f'<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" {dash} points="{pts}"/>'

    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" role="img" '
        f'aria-label="sensitivity to {html.escape(_short(path))}">'
        f"{line(best, '')}{line(mean, _DASHED)}"
        f'<text x="{pad}" y="14">{html.escape(_short(path))}: best (solid), mean (dashed)</text>'
        f'<text x="{pad}" y="{height - 8}">{html.escape(str(values[0]))}</text>'
        f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">'
        f"{html.escape(str(values[-1]))}</text>"
        f'<text x="2" y="{pad}">{high:.3f}</text><text x="2" y="{height - pad}">{low:.3f}</text>'
        "</svg>"
    )


def top_table(rows: list[dict[str, Any]], key: str, top: int) -> str:
    shown = [r for r in rows if _value(r, key) is not None]
    shown.sort(key=lambda r: -(_value(r, key) or 0.0))
    shown = shown[:top]
    names = list(rows[0]["params"]) if rows else []
    head = "".join(f"<th>{html.escape(_short(n))}</th>" for n in names)
    body = "".join(
        "<tr>"
        + f"<td>{r['combination']}</td>"
        + "".join(f"<td>{html.escape(str(r['params'][n]))}</td>" for n in names)
        + f"<td>{fmt(_value(r, key), '{:.4f}')}</td>"
        + f"<td>{fmt(r['statistics'].get('total_return_pct'), '{:.2f}')}</td>"
        + f"<td>{fmt(r['statistics'].get('num_trades'), '{:,}')}</td></tr>"
        for r in shown
    )
    return (f"<table><tr><th>#</th>{head}<th>{html.escape(key)}</th><th>return %</th>"
            f"<th>trades</th></tr>{body}</table>")  # fmt: skip


def equity_svg(points: list[list[Any]], boundaries: list[str]) -> str:
    """Stitched equity ([iso time, equity] points) with dashed lines at window starts."""
    values = [p[1] for p in points if p[1] is not None]
    if len(values) < 2:
        return "<p>not enough points for a chart</p>"
    width, height = 900, 280
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(points) - 1)
    coords = " ".join(
        f"{i * step:.1f},{height - ((p[1] or low) - low) / span * (height - 20) - 10:.1f}"
        for i, p in enumerate(points)
    )
    times = [p[0] for p in points]
    marks = "".join(
        f'<line x1="{i * step:.1f}" x2="{i * step:.1f}" y1="0" y2="{height}" '
        f'stroke="#999" stroke-dasharray="3 3"><title>window from {html.escape(b)}</title></line>'
        for b in boundaries
        for i in [next((n for n, t in enumerate(times) if t >= b), len(times) - 1)]
    )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="stitched out-of-sample equity">{marks}'
        f'<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" points="{coords}"/>'
        f'<text x="4" y="14">{high:,.2f}</text><text x="4" y="{height - 2}">{low:,.2f}</text></svg>'
    )


def sweep_sections(
    summary: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    x: str | None = None,
    y: str | None = None,
    top: int = 20,
) -> dict[str, str]:
    """The sweep report's parts from its result summary and its rows (combination order).

    Raises ValueError naming the choices when `x` or `y` is not a searched parameter.
    """
    key = summary.get("objective_statistic") or "sharpe_ratio"
    paths = list(rows[0]["params"]) if rows else []
    x_path, y_path = resolve_axis(x, paths, 0), resolve_axis(y, paths, 1)
    if x_path and y_path:
        heat = heatmap_svg(rows, x_path, y_path, key)
    else:
        heat = "<p>only one parameter was searched: see its sensitivity below</p>"
    diagnostics = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{diagnostic_text(v)}</td></tr>"
        for k, v in (summary.get("diagnostics") or {}).items()
    )
    return {
        "heatmap": heat,
        "sensitivity": "".join(sensitivity_svg(rows, p, key) for p in paths),
        "top": top_table(rows, key, top),
        "diagnostics": f"<table>{diagnostics or '<tr><td>none</td></tr>'}</table>",
    }


def walkforward_sections(result: dict[str, Any]) -> dict[str, str]:
    """The walk-forward report's parts: stitched out-of-sample curve and windows table
    (a column per chosen parameter, times as 2020-10-22 08:00 UTC)."""
    windows = result.get("windows", [])
    names = list(windows[0]["params"]) if windows else []
    rows = "".join(
        f"<tr><td>{w['window']}</td>"
        f'<td class="when">{html.escape(utc_minute(w["test_start"]))}</td>'
        f'<td class="when">{html.escape(utc_minute(w["test_end"]))}</td>'
        + "".join(f"<td>{html.escape(str(w['params'].get(n)))}</td>" for n in names)
        + f"<td>{fmt(w['in_sample_objective'], '{:.4f}')}</td>"
        f"<td>{fmt(w['out_of_sample_objective'], '{:.4f}')}</td>"
        f"<td>{fmt((w.get('out_of_sample') or {}).get('total_return_pct'), '{:.2f}')}</td></tr>"
        for w in windows
    )
    curve = equity_svg(result.get("stitched_equity", []), [w["test_start"] for w in windows])
    heads = "".join(f"<th>{html.escape(_short(n))}</th>" for n in names)
    table = (
        "<table><tr><th>window</th><th>test from (UTC)</th><th>test to</th>"
        f"{heads}<th>in-sample objective</th><th>out-of-sample objective</th>"
        f"<th>out-of-sample return %</th></tr>{rows}</table>"
    )
    return {"equity": curve, "windows": table}
