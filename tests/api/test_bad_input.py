"""Bad input gets a 4xx whose message says what to fix; never a 500 (real API process)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.stack import Api, StackFactory

TOKEN = "test-token-9f2c"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One stack for the module: these tests only read or add their own operations."""
    factory = StackFactory(tmp_path_factory.mktemp("bad-input"))
    stack, api = factory.start(workers=1, env={"KTRDR_API_TOKEN": TOKEN})
    yield api
    log = stack.api.log_path.read_text() if stack.api else ""
    factory.stop_all()
    assert "unhandled error" not in log, "the API answered a 500"


def detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def test_unknown_operation_id_is_404_with_hint(api: Api) -> None:
    response = api.http.get("/operations/op_missing")
    assert response.status_code == 404
    assert "no operation 'op_missing'" in detail(response) and "ktrdr ops list" in detail(response)
    assert api.http.post("/operations/op_missing/cancel").status_code == 404
    assert api.http.get("/operations/op_missing/results").status_code == 404


def test_unknown_type_is_422_listing_valid_types(api: Api) -> None:
    response = api.http.post("/operations", json={"type": "astrology", "params": {}})
    assert response.status_code == 422
    assert "type" in detail(response) and "'diagnostic'" in detail(response)


def test_generic_create_checks_the_types_parameters(api: Api) -> None:
    response = api.http.post("/operations", json={"type": "training", "params": {}})
    assert response.status_code == 422
    assert detail(response) == "invalid training parameters: strategy: Field required"


def test_malformed_json_is_422_saying_so(api: Api) -> None:
    response = api.http.post(
        "/diagnostics/start", content=b'{"steps": 1,', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in detail(response)


def test_negative_numbers_are_422_naming_the_field(api: Api) -> None:
    response = api.http.post("/diagnostics/start", json={"steps": -1, "step_ms": -5})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"steps", "step_ms"}
    assert "greater than or equal to 0" in detail(response)
    generic = api.http.post("/operations", json={"type": "diagnostic", "params": {"steps": -1}})
    assert generic.status_code == 422 and "steps" in detail(generic)


def test_unknown_field_is_422_asking_to_remove_it(api: Api) -> None:
    response = api.http.post("/diagnostics/start", json={"stepz": 3})
    assert response.status_code == 422
    assert "stepz: unknown field" in detail(response)


def test_bad_pagination_is_422(api: Api) -> None:
    response = api.http.get("/operations", params={"limit": 0})
    assert response.status_code == 422 and "limit" in detail(response)
    response = api.http.get("/operations", params={"status": "sleeping"})
    assert response.status_code == 422 and "status" in detail(response)


def test_worker_without_token_is_refused(api: Api) -> None:
    registration = {"worker_id": "rogue", "kinds": ["diagnostic"], "url": "http://127.0.0.1:9"}
    response = api.http.post("/workers/register", json=registration)
    assert response.status_code == 401
    assert "KTRDR_API_TOKEN" in detail(response)
    wrong = api.http.post(
        "/workers/register", json=registration, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    assert all(w["id"] != "rogue" for w in api.workers())
    report = api.http.post(
        "/operations/op_x/report", json={"worker_id": "rogue", "attempt": 1, "outcome": "completed"}
    )
    assert report.status_code == 401


def test_illegal_transition_is_409_explaining_why(api: Api) -> None:
    op = api.start_diagnostic(steps=1, step_ms=1)
    api.wait_status(op["id"], {"completed"}, 15)
    response = api.http.post(f"/operations/{op['id']}/cancel")
    assert response.status_code == 409
    assert "is completed and cannot become cancelled" in detail(response)
    # A registered worker (its own credential) reporting on an operation it does not own.
    registration = {
        "worker_id": "someone-else",
        "kinds": ["diagnostic"],
        "url": "http://127.0.0.1:9",
    }
    registered = api.http.post(
        "/workers/register", json=registration, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    credential = registered.json()["worker_credential"]
    stale = api.http.post(
        f"/operations/{op['id']}/report",
        json={"worker_id": "someone-else", "attempt": 1, "outcome": "failed", "error": "x"},
        headers={"Authorization": f"Bearer {credential}"},
    )
    assert stale.status_code == 409 and "out of date" in detail(stale)
    gone = api.http.delete(
        "/workers/someone-else", headers={"Authorization": f"Bearer {credential}"}
    )
    assert gone.status_code == 204  # so the dispatcher never picks the unreachable worker
    assert api.op(op["id"])["status"] == "completed"


def test_results_of_unfinished_operation_is_409(api: Api) -> None:
    op = api.start_diagnostic(steps=50, step_ms=100)
    response = api.http.get(f"/operations/{op['id']}/results")
    assert response.status_code == 409 and "ktrdr ops follow" in detail(response)
    api.http.post(f"/operations/{op['id']}/cancel")


def test_metrics_answers_directly_and_docs_are_served(api: Api) -> None:
    response = httpx.get(f"{api.base_url}/metrics", follow_redirects=False)
    assert response.status_code == 200
    assert "ktrdr_operations_queued" in response.text
    assert httpx.get(f"{api.base_url}/docs").status_code == 200
    spec = httpx.get(f"{api.base_url}/openapi.json").json()
    assert (
        "/api/v1/backtests/start" in spec["paths"] or "/api/v1/diagnostics/start" in spec["paths"]
    )


def test_completed_operation_exposes_results_and_metrics(api: Api) -> None:
    op = api.start_diagnostic(steps=3, step_ms=1, label="x")
    api.wait_status(op["id"], {"completed"}, 15)
    results = api.http.get(f"/operations/{op['id']}/results").json()
    assert results["label"] == "x" and results["metrics"]["steps"] == 3
    metrics = api.http.get(f"/operations/{op['id']}/metrics").json()
    assert metrics["metrics"]["steps"] == 3
    assert metrics["duration_s"] >= 0 and metrics["queue_wait_s"] >= 0
