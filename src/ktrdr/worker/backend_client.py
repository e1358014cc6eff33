"""The worker's calls to the backend. Workers never touch the database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from ktrdr import json_codec
from ktrdr.bounds import json_problem
from ktrdr.constants import API_PREFIX
from ktrdr.lean_http import SyncClient
from ktrdr.operations.curve import EpochMetrics
from ktrdr.operations.schemas import Progress
from ktrdr.registry.schemas import HeartbeatReply, RegistrationReply


class NotRegistered(Exception):
    """The backend does not know this worker (restarted, or marked it lost), or holds no
    credential for it (401): register again."""


class StaleOperation(Exception):
    """The backend refused a report: the operation is no longer this worker's (409/404),
    or a newer instance registered under this worker's id (403)."""


class ReportRefused(Exception):
    """The API refused the report itself (400, 413, 422): sending it again cannot help."""


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) else response.text
    return f"{response.status_code}: {text[:500]}"


class BackendClient:
    """Registration shows the shared worker token; every later call shows the credential
    that registration issued to this instance (rotated by each registration)."""

    def __init__(self, api_url: str, worker_id: str, token: str | None, timeout_s: float = 5.0):
        self.worker_id = worker_id
        self._token = token
        self.credential: str | None = None
        self._base_url = api_url.rstrip("/") + API_PREFIX
        self._http = httpx.Client(base_url=self._base_url, timeout=timeout_s)
        plain = self._base_url.startswith("http://")
        self._lean = SyncClient(timeout_s) if plain else None

    def _as_instance(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"} if self.credential else {}

    def register(
        self,
        *,
        kinds: list[str],
        url: str,
        version: str,
        current_operation_id: str | None,
        progress: Progress | None,
    ) -> HeartbeatReply:
        body: dict[str, Any] = {
            "worker_id": self.worker_id,
            "kinds": kinds,
            "url": url,
            "version": version,
            "current_operation_id": current_operation_id,
            "progress": progress.model_dump() if progress else None,
            # Proves this is the same instance (e.g. after being marked lost): only then
            # does the backend believe what it says it is running.
            "credential": self.credential,
        }
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        response = self._http.post("/workers/register", json=body, headers=headers)
        response.raise_for_status()
        reply = RegistrationReply.model_validate(response.json())
        self.credential = reply.worker_credential
        return reply

    def heartbeat(
        self, current_operation_id: str | None, progress: Progress | None, *, draining: bool
    ) -> HeartbeatReply:
        body = {
            "current_operation_id": current_operation_id,
            "progress": progress.model_dump() if progress else None,
            "draining": draining,
        }
        response = self._http.post(
            f"/workers/{self.worker_id}/heartbeat", json=body, headers=self._as_instance()
        )
        if response.status_code in (401, 404):
            raise NotRegistered(response.text)
        response.raise_for_status()
        return HeartbeatReply.model_validate(response.json())

    def progress(
        self, operation_id: str, progress: Progress, epochs: Sequence[EpochMetrics] = ()
    ) -> None:
        body = {
            "worker_id": self.worker_id,
            "progress": progress.model_dump(),
            "epochs": [e.model_dump() for e in epochs],
        }
        self._http.post(
            f"/operations/{operation_id}/progress", json=body, headers=self._as_instance()
        ).raise_for_status()

    def report(
        self,
        operation_id: str,
        *,
        attempt: int,
        outcome: str,
        result: dict[str, Any] | None,
        error: str | None,
        progress: Progress | None = None,
    ) -> None:
        body = {
            "worker_id": self.worker_id,
            "attempt": attempt,
            "outcome": outcome,
            "result": result,
            "error": error,
            "progress": progress.model_dump() if progress else None,
        }
        response = self._post_report(f"/operations/{operation_id}/report", body)
        if response.status_code == 401:
            raise NotRegistered(response.text)  # registers, then delivers the report again
        if response.status_code in (403, 404, 409):
            raise StaleOperation(response.text)
        if response.status_code in (400, 413, 422):
            raise ReportRefused(_detail(response))
        response.raise_for_status()

    def _post_report(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """The final report: over lean HTTP (ktrdr.lean_http) unless the API is behind TLS."""
        if self._lean is None:
            return self._http.post(path, json=body, headers=self._as_instance())
        # What the API would refuse is refused here first (a NaN would otherwise travel as
        # null): the check and orjson took 1 ms of a sweep chunk's 180 KB report, where
        # json.dumps(allow_nan=False) took 3.8.
        problem = json_problem(body)
        if problem:
            raise ValueError(f"the report cannot be sent as JSON: {problem}")
        content = json_codec.dumps_bytes(body)
        headers = {"content-type": "application/json", **self._as_instance()}
        url = self._base_url + path
        status, reply = self._lean.post(url, content, headers)
        return httpx.Response(status, content=reply, request=httpx.Request("POST", url))

    def deregister(self) -> None:
        self._http.delete(
            f"/workers/{self.worker_id}", headers=self._as_instance()
        ).raise_for_status()

    def close(self) -> None:
        self._http.close()
        if self._lean is not None:
            self._lean.close()
