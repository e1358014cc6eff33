"""One real stack (API + 2 workers, user keys on) shared by the client, notebook and MCP
tests, with a synthetic EURUSD 1h series downloaded through the client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ktrdr.client import KtrdrClient
from ktrdr.credentials import ApiKeyEntry, Scope, hash_secret, new_secret
from ktrdr.local_stack import LocalStack
from tests.support.stack import StackFactory

SYMBOL = "EURUSD"
KEYS = {"admin": new_secret(), "reader": new_secret()}
WINDOW = {"start": "2020-02-01T00:00:00+00:00", "end": "2020-04-01T00:00:00+00:00"}


@dataclass
class ClientStack:
    local: LocalStack
    url: str
    client: KtrdrClient  # sends the admin key (read + operate)

    def key(self, name: str) -> str:
        return KEYS[name]


def _entry(name: str, *scopes: Scope) -> str:
    return ApiKeyEntry(name, frozenset(scopes), hash_secret(KEYS[name])).line()


@pytest.fixture(scope="package")
def client_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientStack]:
    factory = StackFactory(tmp_path_factory.mktemp("client"))
    env = {
        "KTRDR_API_KEYS": f"{_entry('admin', Scope.READ, Scope.OPERATE)},"
        f"{_entry('reader', Scope.READ)}"
    }
    local, _ = factory.start(workers=2, env=env, api_key=KEYS["admin"])
    client = KtrdrClient(local.api_url, api_key=KEYS["admin"])
    download = client.start_data_download(SYMBOL, "1h", bars=3000, seed=3)
    client.wait(download, timeout_s=60)
    yield ClientStack(local, local.api_url, client)
    client.close()
    factory.stop_all()


def backtest_params() -> dict[str, Any]:
    return {"symbol": SYMBOL, "timeframe": "1h", "capital": 50_000.0, **WINDOW}
