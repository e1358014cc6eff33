"""The data catalog (what market data the workers' store holds) and file uploads."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from ktrdr.api.auth import Operator, ReadAccess, audit
from ktrdr.api.deps import ArtifactsDep, OperationsDep, SettingsDep
from ktrdr.artifacts.keys import bars_key
from ktrdr.constants import BARS_DIR
from ktrdr.operations.catalog import datasets
from ktrdr.operations.data_deletion import DataDeleted, delete_dataset

router = APIRouter(tags=["data"])


class DatasetPublic(BaseModel):
    """One stored series of the data catalog."""

    model_config = ConfigDict(extra="allow")

    symbol: str
    timeframe: str
    first: str = Field(description="first bar, ISO-8601 UTC")
    last: str = Field(description="last bar, ISO-8601 UTC")
    rows: int = Field(description="stored bars")
    source: str = Field(description="synthetic, csv or yahoo")
    market: str | None = Field(None, description="the calendar gaps are counted against")
    gaps: int | None = Field(None, description="runs of missing bars the market had")


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


@router.get("/data", dependencies=[ReadAccess], response_model=DatasetsPublic)
def list_datasets(service: OperationsDep) -> DatasetsPublic:
    """Stored series (symbol, timeframe, first, last, rows, source, gaps)."""
    items = [DatasetPublic.model_validate(d) for d in datasets(service.store)]
    return DatasetsPublic(data=items, count=len(items))


@router.delete("/data/{symbol}/{timeframe}", response_model=DataDeleted)
def delete_data(
    symbol: Annotated[str, Path(max_length=32, description="e.g. EURUSD (any case)")],
    timeframe: Annotated[str, Path(max_length=16, description="e.g. 1h")],
    service: OperationsDep,
    settings: SettingsDep,
    artifacts: ArtifactsDep,
    who: Operator,
) -> DataDeleted:
    """Delete a stored series: its bars and its catalog entry (404 if unknown, 409 while
    a queued or running operation uses it)."""
    deleted = delete_dataset(
        service.store, settings.data_home / BARS_DIR, symbol, timeframe, service.clock()
    )
    if artifacts.cache_root is not None:
        # Bars in an object store: the catalog entry is gone (committed) first, so a crash
        # here leaves at worst an object nothing lists, overwritten by the next download.
        key = bars_key(deleted.symbol, deleted.timeframe)
        removed = artifacts.exists(key)
        artifacts.delete(key)
        deleted = deleted.model_copy(update={"bars_removed": removed})
    audit(who, "delete_data", symbol=deleted.symbol, timeframe=deleted.timeframe)
    return deleted


class UploadPublic(BaseModel):
    key: str = Field(description="artifact key: pass it as upload_key")
    sha256: str = Field(description="checksum of the bytes: pass it as upload_sha256")
    size_bytes: int


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"upload is larger than {limit:,} bytes (KTRDR_MAX_UPLOAD_BYTES); split the file "
        "and import the parts with --merge",
    )


@router.post(
    "/data/uploads",
    status_code=201,
    response_model=UploadPublic,
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "date,open,high,low,close,volume\n"
                    "2020-01-06,1.1161,1.1190,1.1133,1.1195,1520\n",
                }
            }
        }
    },
)
async def upload(
    request: Request, artifacts: ArtifactsDep, settings: SettingsDep, who: Operator
) -> UploadPublic:
    """Store a file (the request body, e.g. a CSV to import) as an artifact: key + sha256."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if not body:
        raise HTTPException(422, "empty upload: send the file's bytes as the request body")
    data = bytes(body)
    # Content-addressed: the same file uploads to the same key, and the key names its hash.
    digest = hashlib.sha256(data).hexdigest()
    ref = await asyncio.to_thread(artifacts.put, f"uploads/{digest}.csv", data)
    audit(who, "upload", key=ref.key, size_bytes=ref.size_bytes)
    return UploadPublic(key=ref.key, sha256=ref.sha256, size_bytes=ref.size_bytes)
