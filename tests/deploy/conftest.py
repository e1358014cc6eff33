"""Shared paths and fixtures for the deploy/ checks (compose, Prometheus, Grafana)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
PROMETHEUS_CONFIGS = (PROMETHEUS_DIR / "prometheus.yml", PROMETHEUS_DIR / "prometheus.local.yml")
RULE_FILES = tuple(sorted((PROMETHEUS_DIR / "rules").glob("*.yml")))
RULE_TEST_FILES = tuple(sorted((PROMETHEUS_DIR / "tests").glob("*.yml")))
GRAFANA_DIR = DEPLOY / "grafana"
DATASOURCES_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDERS_FILE = GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; the test is skipped (with the fix) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool not found: install Debian's `prometheus` package (./run test does it on CI)"
        )
    return path


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])
