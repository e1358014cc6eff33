"""Console pages and their live fragments. Thin: read through the services, render."""

from __future__ import annotations

import contextlib
import ipaddress
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from ktrdr.api.deps import ArtifactsDep, OperationsDep, SettingsDep, WorkersDep
from ktrdr.config import ApiSettings
from ktrdr.console.assets import PLOTLY_URL, plotly_path
from ktrdr.console.reports import ReportSources, report_for
from ktrdr.console.templating import render
from ktrdr.console.timeline import build_timeline
from ktrdr.engine.strategy import builtin_strategy_names
from ktrdr.operations.catalog import datasets
from ktrdr.operations.model import OperationStatus, OperationType
from ktrdr.operations.schemas import OperationPublic
from ktrdr.operations.service import OperationService
from ktrdr.operations.store import OperationNotFound
from ktrdr.registry.schemas import WorkerState


def local_or_open(request: Request) -> None:
    """Read-only pages need no key on localhost, and none anywhere while the API has no
    user keys. With keys configured, a browser elsewhere gets a 401 page: a page load cannot
    carry the key header (the JSON API, the CLI and a console opened on the API's host can).
    """
    keyring = getattr(request.app.state, "keyring", None)
    if keyring is None or not keyring.enabled:
        return
    if not _is_loopback(request.client.host if request.client else ""):
        raise HTTPException(
            401,
            "this API requires user API keys: open the console on the API's own host "
            "(http://127.0.0.1:…/), or use the CLI with KTRDR_API_KEY",
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


router = APIRouter(dependencies=[Depends(local_or_open)])

PAGE_SIZE = 25
LIVE_MS = 1500
# Tells the live script that the operation ended: reload once to show its report.
FINAL_HEADER = "X-Console-Final"
_STATIC = files("ktrdr.console") / "static"


def _now() -> datetime:
    return datetime.now(UTC)


def _common(settings: ApiSettings) -> dict[str, Any]:
    needs_key = bool(settings.api_keys or settings.api_keys_file)
    return {"needs_key": needs_key, "live_ms": LIVE_MS, "plotly_url": PLOTLY_URL}


# ------------------------------------------------------------------------- overview


def _overview(ops: OperationService, workers: WorkersDep) -> dict[str, Any]:
    now = _now()
    live = workers.list_workers()
    online = [w for w in live if w.state == WorkerState.ONLINE]
    by_kind = Counter(kind.value for w in online for kind in w.kinds)
    busy = Counter(kind.value for w in online if w.busy for kind in w.kinds)

    def count(status: OperationStatus) -> int:
        return ops.list_operations(statuses=[status], types=[], limit=1, offset=0)[1]

    failed, _ = ops.list_operations(
        statuses=[OperationStatus.FAILED], types=[], limit=200, offset=0
    )
    hour_ago = now - timedelta(hours=1)
    recent, _ = ops.list_operations(statuses=[], types=[], limit=10, offset=0)
    return {
        "now": now,
        "workers": live,
        "by_kind": sorted(by_kind.items()),
        "busy_by_kind": busy,
        "running": count(OperationStatus.RUNNING),
        "queued": count(OperationStatus.PENDING),
        "failed_hour": sum(1 for o in failed if o.completed_at and o.completed_at >= hour_ago),
        "recent": recent,
    }


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request, ops: OperationsDep, workers: WorkersDep, settings: SettingsDep
) -> HTMLResponse:
    """Overview: workers by kind, running / queued / failed, recent operations."""
    return render(request, "overview.html", **_common(settings), **_overview(ops, workers))


@router.get("/ui/fragments/overview", response_class=HTMLResponse)
def overview_fragment(request: Request, ops: OperationsDep, workers: WorkersDep) -> HTMLResponse:
    return render(request, "_overview.html", **_overview(ops, workers))


# ----------------------------------------------------------------------- operations


def _choice(
    value: str | None, allowed: type[OperationType] | type[OperationStatus], what: str
) -> Any:
    if not value:
        return None
    try:
        return allowed(value)
    except ValueError:
        names = ", ".join(m.value for m in allowed)
        raise HTTPException(400, f"unknown {what} {value!r}; choose one of: {names}") from None


def _operations(
    ops: OperationService, type_: str | None, status: str | None, symbol: str | None,
    strategy: str | None, page: int,
) -> dict[str, Any]:  # fmt: skip
    op_type = _choice(type_, OperationType, "type")
    op_status = _choice(status, OperationStatus, "status")
    items, total = ops.list_operations(
        statuses=[op_status] if op_status else [], types=[op_type] if op_type else [],
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
        symbol=symbol or None, strategy=strategy or None,
    )  # fmt: skip
    filters = {"type": type_ or "", "status": status or "", "symbol": symbol or "",
               "strategy": strategy or ""}  # fmt: skip
    return {
        "items": items, "total": total, "page": page, "page_size": PAGE_SIZE,
        "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1), "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "types": [t.value for t in OperationType], "statuses": [s.value for s in OperationStatus],
        "now": _now(),
    }  # fmt: skip


Text = Annotated[str | None, Query(max_length=200)]
Page = Annotated[int, Query(ge=1, le=100_000)]


def _error_page(request: Request, settings: ApiSettings, exc: HTTPException) -> HTMLResponse:
    """A page's 4xx for a person: the same message the JSON answer would carry."""
    title = "Not found" if exc.status_code == 404 else "Bad request"
    return render(
        request, "error.html", status_code=exc.status_code, **_common(settings),
        title=title, message=str(exc.detail),
    )  # fmt: skip


@router.get("/operations", response_class=HTMLResponse)
def operations_page(
    request: Request, ops: OperationsDep, settings: SettingsDep, type: Text = None,
    status: Text = None, symbol: Text = None, strategy: Text = None, page: Page = 1,
) -> HTMLResponse:  # fmt: skip
    """Operations: filters, pagination, live progress, cancel."""
    try:
        context = _operations(ops, type, status, symbol, strategy, page)
    except HTTPException as exc:
        return _error_page(request, settings, exc)
    return render(request, "operations.html", **_common(settings), **context)


@router.get("/ui/fragments/operations", response_class=HTMLResponse)
def operations_fragment(
    request: Request, ops: OperationsDep, type: Text = None, status: Text = None,
    symbol: Text = None, strategy: Text = None, page: Page = 1,
) -> HTMLResponse:  # fmt: skip
    context = _operations(ops, type, status, symbol, strategy, page)
    return render(request, "_operations_table.html", **context)


def _detail(ops: OperationService, settings: ApiSettings, operation_id: str) -> dict[str, Any]:
    try:
        op = ops.get(operation_id)
    except OperationNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    now = _now()
    trace_url = None
    if op.trace_id and settings.jaeger_ui_url:
        trace_url = f"{settings.jaeger_ui_url.rstrip('/')}/trace/{op.trace_id}"
    return {
        "op": op, "now": now, "trace_url": trace_url,
        "attempts": build_timeline(op, ops.history(op.id), now),
        "params": _display_params(op),
    }  # fmt: skip


def _display_params(op: OperationPublic) -> list[tuple[str, Any, bool]]:
    """(name, value, multiline) — pasted strategy YAML is shown as a block."""
    return [(k, v, isinstance(v, str) and "\n" in v) for k, v in op.params.items()]


@router.get("/operations/{operation_id}", response_class=HTMLResponse)
def operation_page(
    request: Request,
    operation_id: str,
    ops: OperationsDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
) -> HTMLResponse:
    """One operation: parameters, worker, attempts, error, timeline and its report."""
    try:
        context = _detail(ops, settings, operation_id)
    except HTTPException as exc:
        return _error_page(request, settings, exc)
    op: OperationPublic = context["op"]
    report = report_for(op) if op.status == OperationStatus.COMPLETED else None
    extra = report.context(op, ReportSources(ops, artifacts)) if report else {}
    return render(request, "operation.html", **_common(settings), **context, report=report, **extra)


@router.get("/ui/fragments/operations/{operation_id}", response_class=HTMLResponse)
def operation_fragment(
    request: Request, operation_id: str, ops: OperationsDep, settings: SettingsDep
) -> HTMLResponse:
    context = _detail(ops, settings, operation_id)
    final = {FINAL_HEADER: "1"} if context["op"].status.is_terminal else None
    return render(request, "_operation_live.html", headers=final, **context)


# -------------------------------------------------------------------------- workers


def _workers(ops: OperationService, workers: WorkersDep) -> dict[str, Any]:
    listed = workers.list_workers(include_gone=True)
    current: dict[str, OperationPublic] = {}
    for worker in listed:
        if worker.current_operation_id:
            with contextlib.suppress(OperationNotFound):
                current[worker.id] = ops.get(worker.current_operation_id)
    return {"workers": listed, "current": current, "completed": ops.completed_per_worker(),
            "now": _now()}  # fmt: skip


@router.get("/workers", response_class=HTMLResponse)
def workers_page(
    request: Request, ops: OperationsDep, workers: WorkersDep, settings: SettingsDep
) -> HTMLResponse:
    """Workers: state, kinds, current operation, heartbeat age, completed, lost reason."""
    return render(request, "workers.html", **_common(settings), **_workers(ops, workers))


@router.get("/ui/fragments/workers", response_class=HTMLResponse)
def workers_fragment(request: Request, ops: OperationsDep, workers: WorkersDep) -> HTMLResponse:
    return render(request, "_workers_table.html", **_workers(ops, workers))


# ------------------------------------------------------------------- start a backtest


@router.get("/backtests/new", response_class=HTMLResponse)
def new_backtest(request: Request, ops: OperationsDep, settings: SettingsDep) -> HTMLResponse:
    """Start a backtest: an example or pasted YAML, on a series from the data catalog."""
    return render(
        request, "new_backtest.html", **_common(settings),
        examples=builtin_strategy_names(), datasets=datasets(ops.store),
    )  # fmt: skip


# --------------------------------------------------------------------------- assets

_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    path = Path(str(_STATIC / name))
    if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(404, f"no console asset {name!r}")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


@router.get(PLOTLY_URL)
def plotly_js() -> Response:
    # The URL names Plotly's version, so the browser may keep it for a year.
    return FileResponse(
        plotly_path(), media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )  # fmt: skip
