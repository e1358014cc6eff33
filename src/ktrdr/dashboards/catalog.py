"""The KTRDR dashboards and their rendered JSON files."""

from __future__ import annotations

import json

from ktrdr.dashboards import operations, research, system_overview, worker_status
from ktrdr.dashboards.constants import JAEGER_UI_URL
from ktrdr.dashboards.model import Dashboard


def all_dashboards(jaeger_url: str = JAEGER_UI_URL) -> tuple[Dashboard, ...]:
    """System Overview, Worker Status, Operations and Research, in menu order."""
    return (
        system_overview.build(),
        worker_status.build(),
        operations.build(jaeger_url),
        research.build(),
    )


def render(dashboard: Dashboard) -> str:
    """The exact text committed under deploy/grafana/dashboards/ (stable key order)."""
    return json.dumps(dashboard.to_json(), indent=2, ensure_ascii=False) + "\n"


def rendered_files(jaeger_url: str = JAEGER_UI_URL) -> dict[str, str]:
    """File name -> JSON text for every dashboard (``jaeger_url``: its links' default)."""
    return {d.filename: render(d) for d in all_dashboards(jaeger_url)}
