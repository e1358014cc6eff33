"""The data catalog: what market data the workers' store holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ktrdr.api.auth import ReadAccess
from ktrdr.api.deps import OperationsDep
from ktrdr.operations.catalog import datasets

router = APIRouter(tags=["data"])


@router.get("/data", dependencies=[ReadAccess])
def list_datasets(service: OperationsDep) -> dict[str, Any]:
    """Stored series (symbol, timeframe, first, last, rows, source, gaps)."""
    items = datasets(service.store)
    return {"data": items, "count": len(items)}
