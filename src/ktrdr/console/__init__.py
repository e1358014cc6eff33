"""The web console: server-rendered pages served by ktrdr-api at `/`.

Pages read through the backend's services (never the engine); live parts of a page are
HTML fragments that a few lines of JavaScript fetch again every couple of seconds (see
docs/console.md for why polling fragments, not server-sent events). Actions (start,
cancel) go from the browser to the JSON API under /api/v1 with the user's API key.
Every asset is served from the installed packages: the console works offline.
"""

from __future__ import annotations

from fastapi import FastAPI


def mount_console(app: FastAPI) -> None:
    """Add the console's pages and assets, and refuse cross-site writes to the API."""
    from ktrdr.console.routes import router
    from ktrdr.console.security import SameOriginWrites

    app.include_router(router, include_in_schema=False)
    app.add_middleware(SameOriginWrites)
