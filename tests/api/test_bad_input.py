"""Bad input gets a 4xx whose message says what to fix; never a 500 (real API process)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from ktrdr.local_stack import LocalStack
from tests.support.fuzz import schemathesis
from tests.support.stack import Api, StackFactory

TOKEN = "test-token-9f2c"


@dataclass
class Served:
    stack: LocalStack
    api: Api
    backend: str


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One stack per backend for the module: these tests only read or add their own
    operations. Every input below must be a 4xx on both stores."""
    env = {"KTRDR_API_TOKEN": TOKEN}
    if request.param == "postgresql":
        env["KTRDR_DATABASE_URL"] = request.getfixturevalue("module_postgres_url")
    factory = StackFactory(tmp_path_factory.mktemp(f"bad-input-{request.param}"))
    stack, api = factory.start(workers=1, env=env)
    yield Served(stack, api, request.param)
    factory.stop_all()  # fails if any process answered a 500


@pytest.fixture
def api(served: Served) -> Api:
    return served.api


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


# ---------------------------------------------------------------- what the store holds

AUTH = {"Authorization": f"Bearer {TOKEN}"}
INT64_MAX = 2**63 - 1


def fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json()["errors"]}


def test_offset_beyond_64_bits_is_422_naming_it(api: Api) -> None:
    for offset in (INT64_MAX + 1, 10**29):
        response = api.http.get("/operations", params={"offset": offset})
        assert response.status_code == 422, response.text
        assert fields(response) == {"offset"}
        assert f"less than or equal to {INT64_MAX}" in detail(response)
    for name in ("symbol", "strategy"):
        nul = api.http.get("/operations", params={name: "a\x00b"})
        assert nul.status_code == 422 and fields(nul) == {name}
    last = api.http.get("/operations", params={"offset": INT64_MAX})
    assert last.status_code == 200
    assert (last.json()["data"], last.json()["offset"]) == ([], INT64_MAX)


OPERATION_ROUTES = [
    ("GET", "", None),
    ("GET", "/metrics", None),
    ("GET", "/results", None),
    ("GET", "/events", None),
    ("POST", "/cancel", None),
    ("POST", "/progress", {"worker_id": "w1", "progress": {"percent": 1}}),
    ("POST", "/report", {"worker_id": "w1", "attempt": 1, "outcome": "completed"}),
]


@pytest.mark.parametrize(("method", "suffix", "body"), OPERATION_ROUTES)
def test_nul_or_overlong_operation_id_is_422_on_every_route(
    api: Api, method: str, suffix: str, body: dict | None
) -> None:
    for bad, problem in (("a%00b", "no control characters"), ("o" * 65, "at most 64")):
        response = api.http.request(method, f"/operations/{bad}{suffix}", json=body, headers=AUTH)
        assert response.status_code == 422, response.text
        assert fields(response) == {"operation_id"}
        assert problem in detail(response)


def test_nul_in_worker_id_is_422_on_heartbeat_and_delete(api: Api) -> None:
    beat = api.http.post("/workers/a%00b/heartbeat", json={}, headers=AUTH)
    assert beat.status_code == 422 and fields(beat) == {"worker_id"}
    assert "letters, digits and _ . : @ -" in detail(beat)
    delete = api.http.delete("/workers/a%00b", headers=AUTH)
    assert delete.status_code == 422 and fields(delete) == {"worker_id"}
    too_long = api.http.post(f"/workers/{'w' * 201}/heartbeat", json={}, headers=AUTH)
    assert too_long.status_code == 422 and "at most 200" in detail(too_long)
    unknown = api.http.post("/workers/nobody-1/heartbeat", json={}, headers=AUTH)
    assert unknown.status_code == 404, "a well-formed unknown id is still 'register again'"


def _register(api: Api, **overrides: object) -> httpx.Response:
    body = {"worker_id": "probe-1", "kinds": ["diagnostic"], "url": "http://127.0.0.1:9"}
    return api.http.post("/workers/register", json=body | overrides, headers=AUTH)


def test_registration_with_nul_version_or_long_url_is_422_naming_it(api: Api) -> None:
    nul = _register(api, version="1.0\x00")
    assert nul.status_code == 422 and fields(nul) == {"version"}
    assert "NUL" in detail(nul)
    long_url = _register(api, url="http://127.0.0.1:9/" + "u" * 600)
    assert long_url.status_code == 422 and fields(long_url) == {"url"}
    assert "at most 500" in detail(long_url)
    assert all(w["id"] != "probe-1" for w in api.workers())


@pytest.mark.parametrize(
    ("progress", "field"),
    [
        ({"items_done": 1e30}, "progress.items_done"),
        ({"items_done": 10**30}, "progress.items_done"),
        ({"items_total": 9.22e18}, "progress.items_total"),
        ({"items_total": 2**31}, "progress.items_total"),
        ({"message": "half\x00way"}, "progress.message"),
    ],
)
def test_progress_beyond_the_columns_is_422_naming_the_field(
    api: Api, progress: dict, field: str
) -> None:
    op = api.start_diagnostic(steps=1, step_ms=1)
    body = {"worker_id": "w1", "progress": progress}
    response = api.http.post(f"/operations/{op['id']}/progress", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert fields(response) == {field}


def test_report_with_nan_in_its_result_or_nul_in_its_error_is_422(api: Api) -> None:
    op = api.start_diagnostic(steps=1, step_ms=1)
    raw = b'{"worker_id": "w1", "attempt": 1, "outcome": "completed", "result": {"x": [1, NaN]}}'
    response = api.http.post(
        f"/operations/{op['id']}/report",
        content=raw,
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 422 and fields(response) == {"result"}
    assert "x.1: numbers must be finite" in detail(response)
    body = {"worker_id": "w1", "attempt": 1, "outcome": "failed", "error": "boom\x00"}
    nul = api.http.post(f"/operations/{op['id']}/report", json=body, headers=AUTH)
    assert nul.status_code == 422 and fields(nul) == {"error"}


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_capital_is_422_and_nothing_is_queued(api: Api, value: str) -> None:
    before = api.http.get("/operations").json()["count"]
    raw = f'{{"strategy": "sma_crossover", "capital": {value}}}'.encode()
    json_header = {"content-type": "application/json"}
    response = api.http.post("/backtests/start", content=raw, headers=json_header)
    assert response.status_code == 422, response.text
    assert fields(response) == {"capital"}
    assert "finite number" in detail(response)
    generic = (
        f'{{"type": "backtesting", "params": {{"strategy": "sma_crossover", "capital": {value}}}}}'
    )
    response = api.http.post("/operations", content=generic.encode(), headers=json_header)
    assert response.status_code == 422, response.text
    assert "capital: numbers must be finite" in detail(response)
    assert api.http.get("/operations").json()["count"] == before


def test_huge_numbers_and_nul_in_parameters_are_422(api: Api) -> None:
    cases = [
        ({"fail_at_step": 10**29}, "fail_at_step"),
        ({"label": "a\x00b"}, "label"),
        ({"label": "x" * 201}, "label"),
    ]
    for params, field in cases:
        response = api.http.post("/diagnostics/start", json=params)
        assert response.status_code == 422, (params, response.text)
        assert fields(response) == {field}
    mixed = api.http.post(
        "/data/downloads/start",
        json={"symbol": "X", "timeframe": "1h", "start": "2020-01-01", "end": "2020-01-02T00:00Z"},
    )
    assert mixed.status_code == 202, "naive and aware times compare (naive is UTC)"
    api.http.post(f"/operations/{mixed.json()['id']}/cancel")


def test_synthetic_bars_that_would_run_past_2262_are_422_saying_how_many_fit(api: Api) -> None:
    body = {"symbol": "AAPL", "timeframe": "1h", "provider": "synthetic", "bars": 1_000_000}
    response = api.http.post("/data/downloads/start", json=body)
    assert response.status_code == 422, response.text
    assert "would run past 2262" in detail(response) and "at most about" in detail(response)


def test_worker_side_routes_are_in_the_openapi_document(api: Api) -> None:
    paths = httpx.get(f"{api.base_url}/openapi.json").json()["paths"]
    assert "post" in paths["/api/v1/operations/{operation_id}/progress"]
    assert "post" in paths["/api/v1/operations/{operation_id}/report"]


def test_stored_parameters_that_are_not_json_fail_the_operation_clearly(
    served: Served,
) -> None:
    """Defence in depth: a NaN already in the store (SQLite keeps one; PostgreSQL's json
    refuses it) fails its operation with the reason, frees the worker, loses nobody. The
    store's codec writes NaN as null now; rows written by ``json.dumps`` before hold the
    token, so this test writes its row that way."""
    if served.backend != "sqlite":
        pytest.skip("PostgreSQL cannot store a NaN in a json column")
    import json

    from sqlalchemy import create_engine

    from ktrdr.operations.model import OperationType, utcnow
    from ktrdr.operations.store import Store

    url = f"sqlite:///{served.stack.data_home / 'ktrdr.db'}"
    engine = create_engine(url, json_serializer=json.dumps)
    try:
        op, _ = Store(engine).create_operation(
            op_type=OperationType.DIAGNOSTIC,
            params={"steps": 1, "step_ms": float("nan")},
            params_hash="nan",
            max_attempts=3,
            now=utcnow(),
        )
    finally:
        engine.dispose()
    api = served.api
    failed = api.wait_status(op.id, {"failed", "completed"}, 10)
    assert failed["status"] == "failed" and failed["attempt"] == 1
    assert failed["status_reason"] == (
        "could not be sent to a worker: ValueError: Out of range float values are not JSON "
        "compliant"
    )
    (worker,) = api.workers()
    assert worker["state"] == "online" and worker["current_operation_id"] is None
    after = api.start_diagnostic(steps=1, step_ms=1)
    # Generous: on a loaded machine a 2 s heartbeat timeout can cost the worker a
    # re-registration first; the wait ends as soon as the operation completes.
    assert api.wait_status(after["id"], {"completed"}, 30)["worker_id"] == worker["id"]
    # Take the NaN out again: the stack is shared, and reading a stored NaN back (the
    # listing) is its own problem, left for a follow-up (see the hand-off notes).
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM operation_events WHERE operation_id = ?", (op.id,))
            conn.exec_driver_sql("DELETE FROM operations WHERE id = ?", (op.id,))
    finally:
        engine.dispose()


# ------------------------------------------------------------------- request limits

DEFAULT_MAX_BODY_BYTES = 64 * 2**20


def _raw_post(api: Api, head: str, chunks: Iterator[bytes] = iter(())) -> tuple[int, dict]:
    """Send a request by hand (a declared length we never send, or a chunked upload) and
    read the answer: httpx would insist on sending the whole body first."""
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        for chunk in chunks:
            sock.sendall(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_oversized_body_is_413_saying_the_limit_and_what_to_do(api: Api) -> None:
    declared = (
        "POST /api/v1/data/downloads/start HTTP/1.1\r\nHost: ktrdr\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {DEFAULT_MAX_BODY_BYTES + 1}\r\n\r\n"
    )
    status, body = _raw_post(api, declared)  # refused on the header: nothing uploaded
    assert status == 413
    assert body["detail"] == (
        f"request body is larger than the API's limit of {DEFAULT_MAX_BODY_BYTES:,} bytes "
        "(KTRDR_MAX_BODY_BYTES); send less - e.g. import a long CSV in parts with "
        "`ktrdr data import --merge` - or raise the limit on the API"
    )

    def chunks() -> Iterator[bytes]:  # no length declared: counted as it arrives
        piece = b"x" * 2**20
        for _ in range(DEFAULT_MAX_BODY_BYTES // len(piece) + 1):
            yield b"%x\r\n%s\r\n" % (len(piece), piece)

    chunked = (
        "POST /api/v1/data/downloads/start HTTP/1.1\r\nHost: ktrdr\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    status, body = _raw_post(api, chunked, chunks())
    assert status == 413 and "KTRDR_MAX_BODY_BYTES" in body["detail"]
    assert api.http.get("/health").status_code == 200


# ----------------------------------------------------------- property-based fuzzing


@pytest.mark.parametrize("token", [TOKEN, None], ids=["with-token", "without-token"])
def test_schemathesis_finds_no_server_error_on_any_route(served: Served, token: str | None) -> None:
    """Every route of /openapi.json, fixed seed, small budget (`./run fuzz` runs a large
    one): no input is a 5xx. Without the token only the worker routes differ (a 401,
    decided before the store is touched: fuzzed on SQLite only here, on both by the verb)."""
    if token is None and served.backend != "sqlite":
        pytest.skip("the 401 path does not reach the store; `./run fuzz` covers it here")
    run = schemathesis(
        served.api.base_url,
        token=token,
        max_examples=4 if token else 1,
        phases="fuzzing",
        only_worker_routes=token is None,
        # One client: two writing at once beside the dispatcher can outwait SQLite's busy
        # timeout on a loaded machine (a 503 "database unreachable", not an input bug).
        workers=1,
    )
    assert run.returncode == 0, run.stdout[-8000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated and int(generated[1]) > 0 and generated[1] == generated[2], run.stdout
