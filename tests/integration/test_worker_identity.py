"""Issue 8.3: each worker instance has its own credential (real API and worker processes).

The shared worker token only admits registration; heartbeats, progress, reports and
deregistration need the credential that registration issued to that instance. An attacker
holding the shared token (it can register a worker of its own) tries to complete, fail,
advance, heartbeat and deregister another worker's operation and identity: every attempt
is refused and the operation's record does not change; the real worker then completes it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ktrdr.credentials import hash_secret
from ktrdr.local_stack import LocalStack
from tests.support.stack import Api, StackFactory, wait_for

pytestmark = pytest.mark.integration

TOKEN = "identity-test-token-5b1e0c"
FORGED_RESULT = {"forged": True, "statistics": {"total_return_pct": 1e6}}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def register(api: Api, worker_id: str, **extra: Any) -> httpx.Response:
    body = {"worker_id": worker_id, "kinds": ["diagnostic"], "url": "http://127.0.0.1:9", **extra}
    return api.http.post("/workers/register", json=body, headers=bearer(TOKEN))


def record(op: dict[str, Any]) -> dict[str, Any]:
    """What a forged report would change (progress moves on by itself: left out)."""
    keys = ("status", "worker_id", "attempt", "result", "error", "completed_at", "started_at")
    return {key: op[key] for key in keys}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Api]]:
    """One API and one real worker for the module; one attempt per operation, so that
    re-queueing a predecessor's attempt ends it, deterministically."""
    factory = StackFactory(tmp_path_factory.mktemp("identity"))
    yield factory.start(workers=1, env={"KTRDR_API_TOKEN": TOKEN, "KTRDR_MAX_ATTEMPTS": "1"})
    factory.stop_all()


@pytest.fixture
def api(stack: tuple[LocalStack, Api]) -> Api:
    return stack[1]


def stored_hashes(stack: tuple[LocalStack, Api]) -> dict[str, str | None]:
    """The workers table as the API keeps it (SQLite in the stack's data home)."""
    with sqlite3.connect(stack[0].data_home / "ktrdr.db") as db:
        return dict(db.execute("SELECT id, credential_hash FROM workers").fetchall())


def test_forged_reports_for_another_workers_operation_are_refused(api: Api) -> None:
    [victim] = api.workers()
    op = api.start_diagnostic(steps=80, step_ms=100)
    running = api.wait_status(op["id"], {"running"}, 15)
    assert running["worker_id"] == victim["id"]

    evil = register(api, "evil-worker")
    assert evil.status_code == 200, evil.text
    evil_credential = evil.json()["worker_credential"]
    assert len(evil_credential) >= 40
    before = record(api.op(op["id"]))

    report = {"worker_id": victim["id"], "attempt": 1, "outcome": "completed"}
    path = f"/operations/{op['id']}"
    attempts = {
        # The attacker's own credential, claiming to be the victim: another instance's.
        "own credential as the victim": api.http.post(
            f"{path}/report",
            json={**report, "result": FORGED_RESULT},
            headers=bearer(evil_credential),
        ),
        # The shared token is not a worker credential any more.
        "shared token": api.http.post(
            f"{path}/report", json={**report, "result": FORGED_RESULT}, headers=bearer(TOKEN)
        ),
        "failed as the victim": api.http.post(
            f"{path}/report",
            json={**report, "outcome": "failed", "error": "forged"},
            headers=bearer(evil_credential),
        ),
        "progress as the victim": api.http.post(
            f"{path}/progress",
            json={"worker_id": victim["id"], "progress": {"percent": 99.0, "message": "forged"}},
            headers=bearer(evil_credential),
        ),
        "heartbeat as the victim": api.http.post(
            f"/workers/{victim['id']}/heartbeat", json={}, headers=bearer(evil_credential)
        ),
        "deregister the victim": api.http.delete(
            f"/workers/{victim['id']}", headers=bearer(evil_credential)
        ),
    }
    for what, response in attempts.items():
        assert response.status_code == 403, (what, response.status_code, response.text)
        assert "does not belong to the current instance" in response.json()["detail"], what
        assert "nothing was changed" in response.json()["detail"], what

    missing = api.http.post(f"{path}/report", json={**report, "result": FORGED_RESULT})
    assert missing.status_code == 401 and "worker credential" in missing.json()["detail"]
    # As itself, the attacker holds no claim on the operation: the old stale-report rule.
    as_itself = api.http.post(
        f"{path}/report",
        json={**report, "worker_id": "evil-worker", "result": FORGED_RESULT},
        headers=bearer(evil_credential),
    )
    assert as_itself.status_code == 409 and "out of date" in as_itself.json()["detail"]

    after = api.op(op["id"])
    assert record(after) == before
    assert after["status"] == "running" and after["progress"]["message"] != "forged"
    assert {w["id"]: w["state"] for w in api.workers()} == {
        victim["id"]: "online",
        "evil-worker": "online",
    }
    # The real worker, with its own credential, still finishes the job.
    final = api.wait_status(op["id"], {"completed"}, 30)
    assert final["result"]["worker_id"] == victim["id"]
    assert "forged" not in final["result"]
    assert (
        api.http.delete("/workers/evil-worker", headers=bearer(evil_credential)).status_code == 204
    )


def test_a_worker_without_a_stored_credential_registers_again_and_gets_one(
    stack: tuple[LocalStack, Api],
) -> None:
    """A row from before credentials existed (or a lost hash): heartbeats get 401 and the
    worker re-registers, as it does on 404, receiving a fresh credential."""
    api = stack[1]
    [worker] = api.workers()
    before = stored_hashes(stack)[worker["id"]]
    assert before is not None and len(before) == 64  # a SHA-256, never the credential
    with sqlite3.connect(stack[0].data_home / "ktrdr.db") as db:
        db.execute("UPDATE workers SET credential_hash = NULL WHERE id = ?", (worker["id"],))
    rotated = wait_for(
        lambda: stored_hashes(stack)[worker["id"]], 15, "the worker to register again"
    )
    assert rotated != before
    assert [w["state"] for w in api.workers()] == ["online"]
    op = api.start_diagnostic(steps=2, step_ms=1)
    assert api.wait_status(op["id"], {"completed"}, 20)["worker_id"] == worker["id"]


def test_registering_under_a_busy_workers_id_cannot_adopt_its_operation(
    stack: tuple[LocalStack, Api],
) -> None:
    """Re-registering rotates the credential; a new instance's claim is not believed and
    the predecessor's attempt is re-queued at once, so no forged report can complete it.
    (Runs last: it leaves the real worker superseded.)"""
    api = stack[1]
    [victim] = api.workers()
    victims_hash = stored_hashes(stack)[victim["id"]]
    op = api.start_diagnostic(steps=100, step_ms=100)
    api.wait_status(op["id"], {"running"}, 15)

    takeover = register(api, victim["id"], current_operation_id=op["id"])
    assert takeover.status_code == 200, takeover.text
    assert takeover.json()["cancel_operation_ids"] == [op["id"]]
    stolen = takeover.json()["worker_credential"]
    # Rotated: only the new instance's credential (as a hash) is on record now.
    assert stored_hashes(stack)[victim["id"]] == hash_secret(stolen) != victims_hash
    ended = api.op(op["id"])
    assert ended["status"] == "failed" and ended["result"] is None
    assert ended["error"] == (
        f"worker {victim['id']} restarted (a new instance registered); "
        "gave up after 1 of 1 attempts"
    )
    forged = api.http.post(
        f"/operations/{op['id']}/report",
        json={"worker_id": victim["id"], "attempt": 1, "outcome": "completed", "result": {}},
        headers=bearer(stolen),
    )
    assert forged.status_code == 409, forged.text
    assert record(api.op(op["id"])) == record(ended)
    # The superseded instance (the real process) is refused from now on.
    heartbeat = api.http.post(f"/workers/{victim['id']}/heartbeat", json={})
    assert heartbeat.status_code == 401
