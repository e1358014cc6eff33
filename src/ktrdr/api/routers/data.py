"""The data catalog (what market data the workers' store holds) and file uploads."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from ktrdr.api.auth import Operator, ReadAccess, audit
from ktrdr.api.deps import ArtifactsDep, OperationsDep, SettingsDep
from ktrdr.operations.catalog import datasets

router = APIRouter(tags=["data"])


@router.get("/data", dependencies=[ReadAccess])
def list_datasets(service: OperationsDep) -> dict[str, Any]:
    """Stored series (symbol, timeframe, first, last, rows, source, gaps)."""
    items = datasets(service.store)
    return {"data": items, "count": len(items)}


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
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
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
