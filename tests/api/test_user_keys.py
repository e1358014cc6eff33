"""Issue 8.4: user API keys with scopes, on a real API and worker (and the real CLI).

Keys `reader` (read) and `operator` (operate) come from KTRDR_API_KEYS, `admin` (both)
from KTRDR_API_KEYS_FILE; only their hashes are configured. Every user-facing route is
401 without a key, 403 with a key lacking its scope, and answers with the right one;
health and /metrics stay open for Prometheus. Starts and cancels leave JSON audit lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr.credentials import ApiKeyEntry, Scope, hash_secret, new_secret
from tests.support.stack import Api, StackFactory

pytestmark = pytest.mark.integration

READ, OPERATE = Scope.READ, Scope.OPERATE
KEYS = {name: new_secret() for name in ("reader", "operator", "admin")}


def entry(name: str, *scopes: Scope) -> str:
    return ApiKeyEntry(name, frozenset(scopes), hash_secret(KEYS[name])).line()


@dataclass
class Keyed:
    api: Api  # sends the admin key (for waiting on operations)
    raw: httpx.Client  # sends only what each call says
    base_url: str
    api_log: Path
    home: Path

    def call(self, method: str, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {KEYS[key]}"} if key else {}
        return self.raw.request(method, path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    home = tmp_path_factory.mktemp("user-keys")
    keys_file = home / "keys.txt"
    keys_file.write_text(f"# operators' file: hashes only\n{entry('admin', READ, OPERATE)}\n")
    env = {
        "KTRDR_API_KEYS": f"{entry('reader', READ)},{entry('operator', OPERATE)}",
        "KTRDR_API_KEYS_FILE": str(keys_file),
    }
    factory = StackFactory(home)
    stack, api = factory.start(workers=1, env=env, kinds=("diagnostic",), api_key=KEYS["admin"])
    assert stack.api is not None
    with httpx.Client(base_url=f"{stack.api_url}/api/v1", timeout=10) as raw:
        yield Keyed(api, raw, stack.api_url, stack.api.log_path, home)
    factory.stop_all()


def test_read_routes_need_the_read_scope(keyed: Keyed) -> None:
    op = keyed.call("POST", "/diagnostics/start", "operator", json={"steps": 1, "step_ms": 1})
    assert op.status_code == 202, op.text
    op_id = op.json()["id"]
    keyed.api.wait_status(op_id, {"completed"}, 20)
    for path in (
        "/operations",
        f"/operations/{op_id}",
        f"/operations/{op_id}/metrics",
        f"/operations/{op_id}/results",
        "/workers",
        "/data",
    ):
        none = keyed.call("GET", path, None)
        assert none.status_code == 401, path
        assert none.json()["detail"].startswith("missing or unknown API key"), path
        assert none.headers["www-authenticate"] == "Bearer"
        wrong = keyed.call("GET", path, "operator")
        assert wrong.status_code == 403, path
        assert (
            wrong.json()["detail"] == "API key 'operator' lacks the 'read' scope (it has: operate)"
        )
        for key in ("reader", "admin"):
            assert keyed.call("GET", path, key).status_code == 200, (path, key)
    listed = keyed.call("GET", "/operations", "reader").json()
    assert op_id in [o["id"] for o in listed["data"]]
    results = keyed.call("GET", f"/operations/{op_id}/results", "reader").json()
    assert results["metrics"]["steps"] == 1
    forged = keyed.raw.get("/operations", headers={"Authorization": "Bearer not-a-key"})
    assert forged.status_code == 401


def test_start_and_cancel_need_the_operate_scope(keyed: Keyed) -> None:
    body = {"steps": 200, "step_ms": 50}
    starts = [("/diagnostics/start", body), ("/operations", {"type": "diagnostic", "params": body})]
    started: list[str] = []
    for path, payload in starts:
        assert keyed.call("POST", path, None, json=payload).status_code == 401, path
        refused = keyed.call("POST", path, "reader", json=payload)
        assert refused.status_code == 403, path
        assert refused.json()["detail"] == (
            "API key 'reader' lacks the 'operate' scope (it has: read)"
        )
        ok = keyed.call("POST", path, "operator", json=payload)
        assert ok.status_code == 202, ok.text
        started.append(ok.json()["id"])
    # The refused starts queued nothing: only the two accepted ones exist.
    ids = {o["id"] for o in keyed.call("GET", "/operations", "admin").json()["data"]}
    assert set(started) <= ids
    for op_id in started:
        assert keyed.call("POST", f"/operations/{op_id}/cancel", None).status_code == 401
        assert keyed.call("POST", f"/operations/{op_id}/cancel", "reader").status_code == 403
        assert keyed.api.op(op_id)["status"] in {"pending", "running"}  # the client's key
        cancelled = keyed.call("POST", f"/operations/{op_id}/cancel", "operator")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    audit = [
        line["audit"]
        for line in map(json.loads, keyed.api_log.read_text().splitlines())
        if line.get("logger") == "ktrdr.audit"
    ]
    for op_id in started:
        assert {"action": "start", "key": "operator", "operation_id": op_id,
                "type": "diagnostic", "created": True} in audit  # fmt: skip
        cancels = [a for a in audit if a["action"] == "cancel" and a["operation_id"] == op_id]
        assert [(a["key"], a["type"]) for a in cancels] == [("operator", "diagnostic")]
    refused_by = sorted(
        (a["key"] or "", a["status"], a["path"]) for a in audit if a["action"] == "refused"
    )
    assert ("reader", 403, "/api/v1/diagnostics/start") in refused_by
    assert ("", 401, "/api/v1/operations") in refused_by


def test_health_and_metrics_stay_open_for_prometheus(keyed: Keyed) -> None:
    spec = httpx.get(f"{keyed.base_url}/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"UserApiKey", "WorkerCredential"}
    paths = spec["paths"]
    assert paths["/api/v1/operations"]["get"]["security"] == [{"UserApiKey": []}]
    assert paths["/api/v1/backtests/start"]["post"]["security"] == [{"UserApiKey": []}]
    assert "security" not in paths["/api/v1/health"]["get"]
    assert keyed.raw.get("/health").json()["status"] == "ok"
    assert httpx.get(f"{keyed.base_url}/metrics").status_code == 200
    assert httpx.get(f"{keyed.base_url}/api/v1/sd/workers").status_code == 200


def cli(keyed: Keyed, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KTRDR_API_KEY"}
    env["KTRDR_API_URL"] = keyed.base_url
    env["KTRDR_DATA_HOME"] = str(keyed.home / "cli")
    if key is not None:
        env["KTRDR_API_KEY"] = KEYS[key]
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_authenticates_with_its_key_end_to_end(keyed: Keyed) -> None:
    # No key: refused with the fix in the message, exit code 3 (the API refused).
    refused = cli(keyed, "ops", "list", "--json")
    assert refused.returncode == 3
    assert "error: missing or unknown API key" in refused.stderr and "--api-key" in refused.stderr
    # A read key cannot start: 403, exit code 3.
    wrong = cli(keyed, "doctor", "--steps", "1", "--step-ms", "1", key="reader")
    assert wrong.returncode == 3 and "lacks the 'operate' scope" in wrong.stderr
    # The admin key from the environment: health, workers, start, follow to completed.
    doctor = cli(keyed, "doctor", "--steps", "2", "--step-ms", "1", key="admin")
    assert doctor.returncode == 0, doctor.stderr
    assert "workers online: 1 (1 run diagnostics)" in doctor.stdout
    # --api-key on the command line.
    listed = cli(
        keyed, "--api-key", KEYS["reader"], "ops", "list", "--json", "--type", "diagnostic"
    )
    assert listed.returncode == 0, listed.stderr
    newest = json.loads(listed.stdout)["data"][0]
    shown = cli(keyed, "--api-key", KEYS["reader"], "ops", "show", newest["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    op = json.loads(shown.stdout)
    assert op["status"] == "completed" and op["params"] == {"steps": 2, "step_ms": 1} | {
        k: v for k, v in op["params"].items() if k not in {"steps", "step_ms"}
    }
