"""Headless Chromium (Debian's package) driven by Playwright, with a page that records
what a person would notice: console errors, failed requests, and where requests went."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# CI keeps this folder as an artifact (docs/console.md); it is gitignored.
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Browser downloads are not reachable here: Playwright drives the system Chromium, with
# every feature that would phone home switched off.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def launch_browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: `apt-get install chromium` (./run test does)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


_BACKGROUND = ("/ui/fragments/", "/ui/static/favicon.svg")


@dataclass
class WatchedPage:
    """A page and what happened on it; `assert_clean` is what every test ends with."""

    page: Any
    origin: str
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def attach(self) -> None:
        page = self.page
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"page error: {exc}"))
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)

    def _on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        # Chromium logs every 4xx as an error; one the test provoked on purpose is fine.
        status = re.search(r"responded with a status of (\d+)", message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        self.console_errors.append(message.text)

    def _on_failed(self, request: Any) -> None:
        # A navigation aborts the live poll (or the favicon fetch) still in flight: by
        # design, not a failure.
        if request.failure == "net::ERR_ABORTED" and any(p in request.url for p in _BACKGROUND):
            return
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Any) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.failed.append(f"{response.request.method} {response.url}: HTTP {response.status}")

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.origin + path)
        assert response is not None and response.status == 200, (
            f"{path}: {response and response.status}"
        )
        return response

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_clean(self) -> None:
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.failed == [], f"failed requests: {self.failed}"
        foreign = [
            u
            for u in self.urls
            if not u.startswith(self.origin + "/") and not u.startswith("blob:")
        ]
        assert foreign == [], f"requests left the API's origin (must work offline): {foreign}"
        assert self.urls, "the page made no request at all"
