"""The KTRDR dashboards and their rendered JSON files."""

from __future__ import annotations

import json

from ktrdr.dashboards import operations, system_overview, worker_status
from ktrdr.dashboards.model import Dashboard


def all_dashboards() -> tuple[Dashboard, ...]:
    """System Overview, Worker Status and Operations, in menu order."""
    return (system_overview.build(), worker_status.build(), operations.build())


def render(dashboard: Dashboard) -> str:
    """The exact text committed under deploy/grafana/dashboards/ (stable key order)."""
    return json.dumps(dashboard.to_json(), indent=2, ensure_ascii=False) + "\n"


def rendered_files() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    return {d.filename: render(d) for d in all_dashboards()}
