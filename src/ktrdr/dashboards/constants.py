"""Names the dashboards share with the Prometheus and Grafana provisioning files.

Tests cross-check these against ``deploy/``: change them together.
"""

from __future__ import annotations

from pathlib import Path

# Stable datasource uids, provisioned by deploy/grafana/provisioning/datasources/datasources.yml.
PROMETHEUS_DATASOURCE_UID = "ktrdr-prometheus"
JAEGER_DATASOURCE_UID = "ktrdr-jaeger"

# Prometheus job names (deploy/prometheus/prometheus*.yml).
API_JOB = "ktrdr-api"
WORKERS_JOB = "ktrdr-workers"
# What "All" means for the job variable: every KTRDR job, never Prometheus itself.
KTRDR_JOBS_REGEX = "ktrdr-.*"

# Target labels attached to worker scrape targets by the API's HTTP service discovery.
WORKER_ID_LABEL = "worker_id"
WORKER_KIND_LABEL = "worker_kind"

# Where the Jaeger UI is published by deploy/docker-compose.yml (and `ktrdr up` users):
# the default of the Operations dashboard's $jaeger_url variable, which every Jaeger link
# uses. Another deployment: `python -m ktrdr.dashboards --jaeger-url URL`, or change the
# variable on the dashboard (?var-jaeger_url=URL).
JAEGER_UI_URL = "http://localhost:16686"

# Request-rate and latency panels leave out the workers' own chatter by default (beats
# every few seconds, progress reports): it would drown the user-facing traffic.
DEFAULT_ROUTE_EXCLUDE = ".*/heartbeat|.*/progress"

# Relative to the repository root; `python -m ktrdr.dashboards` writes here.
DASHBOARDS_DIR = Path("deploy") / "grafana" / "dashboards"

DEFAULT_TIME_FROM = "now-1h"
DEFAULT_REFRESH = "30s"
DASHBOARD_TAG = "ktrdr"
