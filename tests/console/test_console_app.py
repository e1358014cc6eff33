"""The console's server side without a browser: assets from the installed packages, the
cross-site write guard, and pages that answer a bad request with a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import plotly
import pytest

from ktrdr.console.assets import PLOTLY_URL
from tests.support.stack import StackFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    factory = StackFactory(tmp_path_factory.mktemp("console-app"))
    try:
        stack, _ = factory.start(workers=0)
        with httpx.Client(base_url=stack.api_url, timeout=10) as http:
            yield http
    finally:
        factory.stop_all()


def test_plotly_is_served_from_the_installed_package(client: httpx.Client) -> None:
    response = client.get(PLOTLY_URL)
    assert response.status_code == 200
    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert response.content == shipped.read_bytes()
    assert response.headers["content-type"].startswith("text/javascript")
    assert "immutable" in response.headers["cache-control"]


def test_pages_send_a_strict_content_security_policy(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": "SAME"}, 404),  # same origin: reaches the route
        ({}, 404),  # no Origin: CLI, workers, scripts
    ],
)
def test_cross_site_writes_are_refused_before_any_route(
    client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    if headers.get("Origin") == "SAME":
        headers = {"Origin": str(client.base_url).rstrip("/")}
    response = client.post("/api/v1/operations/op_nope/cancel", headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert "cross-site request refused" in response.json()["detail"]


def test_cross_site_reads_are_not_affected(client: httpx.Client) -> None:
    response = client.get("/api/v1/health", headers={"Origin": "http://evil.example"})
    assert response.status_code == 200


def test_bad_page_requests_are_4xx_with_the_fix(client: httpx.Client) -> None:
    response = client.get("/operations", params={"type": "nope"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "unknown type &#39;nope&#39;; choose one of: backtesting" in response.text
    missing = client.get("/operations/op_<b>nope")
    assert missing.status_code == 404
    assert "no operation &#39;op_&lt;b&gt;nope&#39;" in missing.text  # escaped
    assert client.get("/ui/static/..%2F__init__.py").status_code == 404
    assert client.get("/ui/static/missing.js").status_code == 404


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    from ktrdr.credentials import ApiKeyEntry, Scope, hash_secret, new_secret

    key = new_secret()
    line = ApiKeyEntry("operator", frozenset({Scope.READ, Scope.OPERATE}), hash_secret(key)).line()
    factory = StackFactory(tmp_path_factory.mktemp("console-keys"))
    try:
        stack, _ = factory.start(workers=0, env={"KTRDR_API_KEYS": line}, api_key=key)
        with httpx.Client(base_url=stack.api_url, timeout=10) as http:
            yield http, key
    finally:
        factory.stop_all()


def test_with_keys_pages_read_locally_but_actions_need_the_key(
    keyed: tuple[httpx.Client, str],
) -> None:
    http, key = keyed
    page = http.get("/operations")
    assert page.status_code == 200  # read-only, from the API's own host
    assert 'placeholder="required for actions"' in page.text
    same_origin = {"Origin": str(http.base_url).rstrip("/")}
    refused = http.post("/api/v1/operations/op_nope/cancel", headers=same_origin)
    assert refused.status_code == 401 and "API key" in refused.json()["detail"]
    with_key = http.post(
        "/api/v1/operations/op_nope/cancel",
        headers={**same_origin, "Authorization": f"Bearer {key}"},
    )
    assert with_key.status_code == 404  # past the key check: the operation does not exist
