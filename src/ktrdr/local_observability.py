"""Prometheus and Grafana configuration for a stack started by `ktrdr up` on any ports.

`ktrdr up` writes them under `<data home>/observability/` for the ports it really uses:
a Prometheus config scraping the API and discovering the workers through the API, with
the repository's rule files, and a Grafana provisioning tree (datasources on localhost,
dashboards read from the repository). The compose files in `deploy/` stay the source:
the Grafana variant is derived from them, changing only what differs outside compose.
`deploy/prometheus/prometheus.local.yml` is this module's output for the default ports
(tests/deploy/test_local_observability.py keeps the two equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ktrdr.constants import API_PREFIX
from ktrdr.dashboards.constants import (
    API_JOB,
    JAEGER_DATASOURCE_UID,
    PROMETHEUS_DATASOURCE_UID,
    WORKERS_JOB,
)

DEFAULT_PROMETHEUS_URL = "http://localhost:9090"
DEFAULT_JAEGER_URL = "http://localhost:16686"
SCRAPE_INTERVAL = "5s"


def deploy_dir() -> Path | None:
    """The repository's deploy/ folder (a source checkout), or None for a wheel install."""
    candidate = Path(__file__).resolve().parents[2] / "deploy"
    return candidate if (candidate / "prometheus" / "rules").is_dir() else None


def prometheus_config(api_address: str, rule_files: list[str]) -> dict[str, Any]:
    """Scrape the API at `api_address` (host:port) and the workers it lists."""
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": "4s",
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": API_JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [api_address]}],
            },
            {
                "job_name": WORKERS_JOB,
                "metrics_path": "/metrics",
                "http_sd_configs": [
                    {
                        "url": f"http://{api_address}{API_PREFIX}/sd/workers",
                        "refresh_interval": SCRAPE_INTERVAL,
                    }
                ],
            },
        ],
    }


def grafana_provisioning(
    deploy: Path, *, prometheus_url: str, jaeger_url: str
) -> dict[str, dict[str, Any]]:
    """The compose provisioning with localhost datasource URLs and the repository's
    dashboards folder: {relative path: document}."""
    provisioning = deploy / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    urls = {PROMETHEUS_DATASOURCE_UID: prometheus_url, JAEGER_DATASOURCE_UID: jaeger_url}
    for source in datasources["datasources"]:
        source["url"] = urls[source["uid"]]
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    for provider in providers["providers"]:
        provider["options"]["path"] = str((deploy / "grafana" / "dashboards").resolve())
    return {
        "datasources/datasources.yml": datasources,
        "dashboards/dashboards.yml": providers,
    }


@dataclass(frozen=True)
class ObservabilityFiles:
    prometheus_config: Path
    grafana_provisioning: Path | None  # None without a source checkout (no dashboards)


def write_local_observability(
    out_dir: Path,
    api_address: str,
    *,
    prometheus_url: str = DEFAULT_PROMETHEUS_URL,
    jaeger_url: str = DEFAULT_JAEGER_URL,
) -> ObservabilityFiles:
    deploy = deploy_dir()
    rules = [str(deploy / "prometheus" / "rules" / "*.yml")] if deploy else []
    out_dir.mkdir(parents=True, exist_ok=True)
    prometheus = out_dir / "prometheus.yml"
    header = f"# Written by `ktrdr up` for the API at {api_address}; rewritten on every start.\n"
    prometheus.write_text(
        header + yaml.safe_dump(prometheus_config(api_address, rules), sort_keys=False),
        encoding="utf-8",
    )
    if deploy is None:
        return ObservabilityFiles(prometheus, None)
    grafana = out_dir / "grafana" / "provisioning"
    documents = grafana_provisioning(deploy, prometheus_url=prometheus_url, jaeger_url=jaeger_url)
    for relative, document in documents.items():
        path = grafana / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return ObservabilityFiles(prometheus, grafana)
