"""Who may call what: the three credentials of the backend, as FastAPI dependencies.

- **Shared worker token** (`KTRDR_API_TOKEN`): admits a worker's *registration* only (and
  is what the backend shows a worker when it dispatches a job).
- **Worker instance credential**: issued by registration, rotated on every registration;
  required on heartbeats, progress, reports and deregistration. It ties a report to the
  instance the backend assigned the operation to (ktrdr.registry.service).
- **User API keys** (`KTRDR_API_KEYS` / `KTRDR_API_KEYS_FILE`, hashed at rest): for people
  and scripts; scope `read` lists and inspects, `operate` starts and cancels. With no key
  configured (local mode only, see ktrdr.config) the user-facing API is open.

`/metrics`, `/api/v1/health` and `/api/v1/sd/workers` stay open: Prometheus scrapes them
without credentials and they carry no operation data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ktrdr.api.params import WorkerIdPath
from ktrdr.config import ApiSettings
from ktrdr.credentials import ApiKeyEntry, Scope, hash_secret
from ktrdr.registry.service import WorkerService

audit_log = logging.getLogger("ktrdr.audit")

_BEARER = {"WWW-Authenticate": "Bearer"}

# Declared for the OpenAPI document (the "Authorize" button in /docs says which routes need
# what); the header itself is read by `bearer` so the error messages stay ours.
_user_key_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="UserApiKey",
    description="a user API key (`ktrdr keys new`); scopes read / operate",
)
_worker_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="WorkerCredential",
    description="registration: KTRDR_API_TOKEN; afterwards the instance's worker_credential",
)
SchemeDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_user_key_scheme)]
WorkerSchemeDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_worker_scheme)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# ----------------------------------------------------------------------- workers


async def require_worker_token(request: Request, _scheme: WorkerSchemeDep) -> None:
    """Only holders of the shared token may register workers."""
    settings: ApiSettings = request.app.state.settings
    if not settings.api_token:
        return  # local mode, warned about at start-up
    token = bearer(request)
    if token is None or not secrets.compare_digest(token, settings.api_token):
        raise HTTPException(
            status_code=401,
            detail="missing or wrong worker token: send 'Authorization: Bearer <KTRDR_API_TOKEN>'",
            headers=_BEARER,
        )


WorkerAuth = Depends(require_worker_token)


async def _worker_credential(request: Request, _scheme: WorkerSchemeDep) -> str:
    credential = bearer(request)
    if credential is None:
        raise HTTPException(
            status_code=401,
            detail="missing worker credential: send 'Authorization: Bearer <credential>' "
            "with the worker_credential that POST /api/v1/workers/register returned",
            headers=_BEARER,
        )
    return credential


WorkerCredential = Annotated[str, Depends(_worker_credential)]


def authenticate_worker(request: Request, worker_id: str, credential: str) -> None:
    """401 without a credential on record, 403 for another instance's, 404 if unknown."""
    workers: WorkerService = request.app.state.workers
    workers.authenticate(worker_id, credential)


def _path_worker(request: Request, worker_id: WorkerIdPath, credential: WorkerCredential) -> None:
    # WorkerIdPath: a malformed id is a 422 here, before it reaches the store.
    authenticate_worker(request, worker_id, credential)


# For routes with `{worker_id}` in the path; body-addressed routes call authenticate_worker.
WorkerInstanceAuth = Depends(_path_worker)


# ------------------------------------------------------------------------- users


@dataclass(frozen=True)
class Principal:
    """The caller of a user-facing route: a named key, or `anonymous` in open local mode."""

    name: str
    scopes: frozenset[Scope]


ANONYMOUS = Principal("anonymous", frozenset(Scope))


class Keyring:
    """The configured user keys, looked up by hash (the keys themselves are never kept)."""

    def __init__(self, entries: Sequence[ApiKeyEntry]):
        self._by_hash = {entry.key_hash: entry for entry in entries}

    @property
    def enabled(self) -> bool:
        return bool(self._by_hash)

    def find(self, key: str) -> ApiKeyEntry | None:
        # A dict lookup on the hash is not a timing oracle for the key: the attacker does
        # not control the hash's bytes.
        return self._by_hash.get(hash_secret(key))


def _require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    # `async def`: no database, so no reason for a thread-pool hop on every request.
    async def dependency(request: Request, _scheme: SchemeDep) -> Principal:
        keyring: Keyring = request.app.state.keyring
        if not keyring.enabled:
            return ANONYMOUS
        key = bearer(request)
        entry = keyring.find(key) if key else None
        if entry is None:
            _audit_refusal(request, None, scope, 401)
            raise HTTPException(
                status_code=401,
                detail="missing or unknown API key: send 'Authorization: Bearer <key>' "
                "(the CLI reads KTRDR_API_KEY or --api-key)",
                headers=_BEARER,
            )
        if scope not in entry.scopes:
            _audit_refusal(request, entry.name, scope, 403)
            raise HTTPException(
                status_code=403,
                detail=f"API key {entry.name!r} lacks the {scope.value!r} scope "
                f"(it has: {', '.join(sorted(entry.scopes))})",
            )
        return Principal(entry.name, entry.scopes)

    dependency.__name__ = f"require_{scope.value}"
    return dependency


ReadAccess = Depends(_require(Scope.READ))
Operator = Annotated[Principal, Depends(_require(Scope.OPERATE))]


def audit(principal: Principal, action: str, **fields: object) -> None:
    """One JSON log line (logger `ktrdr.audit`) per start or cancel, naming the key."""
    audit_log.info(
        "%s by %s", action, principal.name, extra={"audit": {"action": action,
                                                             "key": principal.name, **fields}}
    )  # fmt: skip


def _audit_refusal(request: Request, key_name: str | None, scope: Scope, status: int) -> None:
    if scope != Scope.OPERATE:
        return  # refused reads are not audited: they change nothing
    audit_log.warning(
        "refused %s %s",
        request.method,
        request.url.path,
        extra={"audit": {"action": "refused", "key": key_name, "status": status,
                         "method": request.method, "path": request.url.path}},
    )  # fmt: skip
