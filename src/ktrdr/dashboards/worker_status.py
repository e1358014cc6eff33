"""Worker Status: how many workers of each kind, are they healthy, busy, and how loaded?

Registry gauges (``ktrdr_workers_*``, ``ktrdr_worker_busy``) and lifecycle counters come
from the API job only. Health and resources come from the workers' own scrape targets,
which the API's HTTP service discovery labels with ``worker_id`` and ``worker_kind``:
no port pattern, so scaled workers on any host and port all appear.
"""

from __future__ import annotations

from ktrdr.dashboards.constants import API_JOB, WORKERS_JOB
from ktrdr.dashboards.model import (
    Dashboard,
    Expectation,
    Panel,
    PanelType,
    QueryVariable,
    Row,
    Target,
    Threshold,
    ValueText,
)
from ktrdr.dashboards.promql import count_in_window

UID = "ktrdr-worker-status"
FILLED = Expectation.FILLED_BY_BACKTEST_WORKLOAD

API = f'job="{API_JOB}"'
# A worker serving several kinds may carry them all in worker_kind; match any of them.
WORKER_SCOPE = f'job="{WORKERS_JOB}", instance=~"$instance", worker_kind=~".*($kind).*"'
BUSY = f'ktrdr_worker_busy{{{API}, kind=~"$kind"}}'


def build() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="KTRDR / Worker Status",
        description=(
            "How many workers of each kind are registered and free, is each worker's "
            "endpoint healthy, which ones are busy, and how much work and CPU/memory each uses."
        ),
        filename="worker-status.json",
        variables=(
            QueryVariable("kind", "Worker kind", f"ktrdr_workers_registered{{{API}}}", "kind"),
            QueryVariable("instance", "Worker instance", f'up{{job="{WORKERS_JOB}"}}', "instance"),
        ),
        items=(
            Row("Registry"),
            Panel(
                "Registered workers",
                PanelType.STAT,
                (
                    Target(
                        f"count(count by (worker_id) ({BUSY})) or vector(0)",
                        "workers",
                        instant=True,
                    ),
                ),
                description="Distinct alive workers serving the selected kinds.",
                width=6,
                height=5,
                expectation=FILLED,
            ),
            Panel(
                "Available workers",
                PanelType.STAT,
                (
                    Target(
                        f"count((max by (worker_id) ({BUSY})) == 0) or vector(0)",
                        "idle workers",
                        instant=True,
                    ),
                ),
                description="Alive workers not running an operation (0 when all are busy).",
                width=6,
                height=5,
                thresholds=(Threshold("orange"), Threshold("green", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Busy workers",
                PanelType.STAT,
                (
                    Target(
                        f"sum(max by (worker_id) ({BUSY})) or vector(0)",
                        "busy workers",
                        instant=True,
                    ),
                ),
                width=6,
                height=5,
                expectation=FILLED,
            ),
            Panel(
                "Workers lost (window)",
                PanelType.STAT,
                (
                    Target(
                        count_in_window(f'ktrdr_workers_lost_total{{{API}, kinds=~".*($kind).*"}}'),
                        "lost",
                        instant=True,
                    ),
                ),
                description="Workers declared dead after missed heartbeats (each counts once, "
                "whatever its kinds).",
                width=6,
                height=5,
                decimals=0,
                thresholds=(Threshold("green"), Threshold("red", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Registered and available workers by kind",
                PanelType.TIMESERIES,
                (
                    Target(
                        f'sum by (kind) (ktrdr_workers_registered{{{API}, kind=~"$kind"}})',
                        "registered {{kind}}",
                    ),
                    Target(
                        f'sum by (kind) (ktrdr_workers_available{{{API}, kind=~"$kind"}})',
                        "available {{kind}}",
                    ),
                ),
                description="A worker serving several kinds counts once per kind.",
                width=24,
                decimals=0,
                expectation=FILLED,
            ),
            Row("Health"),
            Panel(
                "Worker health matrix",
                PanelType.STAT,
                (
                    Target(
                        f"up{{{WORKER_SCOPE}}}",
                        "{{worker_id}}",
                        instant=True,
                    ),
                ),
                description="Scrape of each worker's own /metrics endpoint.",
                width=12,
                height=6,
                mappings=(ValueText(0, "DOWN", "red"), ValueText(1, "UP", "green")),
                thresholds=(Threshold("red"), Threshold("green", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Current busy / idle",
                PanelType.STAT,
                (Target(f"max by (worker_id) ({BUSY})", "{{worker_id}}", instant=True),),
                description="What the API's registry says each worker is doing now.",
                width=12,
                height=6,
                mappings=(ValueText(0, "IDLE", "green"), ValueText(1, "BUSY", "blue")),
                thresholds=(Threshold("green"), Threshold("blue", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Worker availability timeline",
                PanelType.STATE_TIMELINE,
                (Target(f"up{{{WORKER_SCOPE}}}", "{{worker_id}}"),),
                description="Up/down history of every worker target seen in the window.",
                width=12,
                mappings=(ValueText(0, "DOWN", "red"), ValueText(1, "UP", "green")),
                thresholds=(Threshold("red"), Threshold("green", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Worker state timeline",
                PanelType.STATE_TIMELINE,
                (
                    Target(
                        f"max by (worker_id, state) (ktrdr_worker_state{{{API}}}) == 1",
                        "{{worker_id}} {{state}}",
                    ),
                ),
                description=(
                    "Registry state of each worker (online, draining, lost, offline). The "
                    "state is a metric, not a scrape-target label, so a worker keeps one "
                    "`up` series for its whole life."
                ),
                width=24,
                expectation=FILLED,
            ),
            Panel(
                "Busy / idle timeline",
                PanelType.STATE_TIMELINE,
                (Target(f"max by (worker_id) ({BUSY})", "{{worker_id}}"),),
                width=12,
                mappings=(ValueText(0, "idle", "green"), ValueText(1, "busy", "blue")),
                thresholds=(Threshold("green"), Threshold("blue", 1)),
                expectation=FILLED,
            ),
            Row("Load"),
            Panel(
                "Operations per worker (window)",
                PanelType.BAR_GAUGE,
                (
                    Target(
                        count_in_window(
                            f'ktrdr_worker_operations_total{{{API}, type=~"$kind"}}',
                            "worker_id, type",
                        ),
                        "{{worker_id}} {{type}}",
                        instant=True,
                    ),
                ),
                description="Operations dispatched to each worker over the dashboard window.",
                width=12,
                decimals=0,
                expectation=FILLED,
            ),
            Panel(
                "Operations dispatched per worker",
                PanelType.TIMESERIES,
                (
                    Target(
                        "sum by (worker_id) (rate(ktrdr_worker_operations_total"
                        f'{{{API}, type=~"$kind"}}[$__rate_interval])) * 60',
                        "{{worker_id}}",
                    ),
                ),
                unit="opm",
                width=12,
                bars=True,
                expectation=FILLED,
            ),
            Panel(
                "CPU per worker",
                PanelType.TIMESERIES,
                (
                    Target(
                        "sum by (worker_id) (rate(process_cpu_seconds_total"
                        f"{{{WORKER_SCOPE}}}[$__rate_interval]))",
                        "{{worker_id}}",
                    ),
                ),
                description="CPU cores used by each worker process.",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Memory per worker",
                PanelType.TIMESERIES,
                (Target(f"process_resident_memory_bytes{{{WORKER_SCOPE}}}", "{{worker_id}}"),),
                unit="bytes",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Backtest bars simulated per worker",
                PanelType.TIMESERIES,
                (
                    Target(
                        "sum by (worker_id) (rate(ktrdr_backtest_bars_simulated_total"
                        f"{{{WORKER_SCOPE}}}[$__rate_interval]))",
                        "{{worker_id}}",
                    ),
                ),
                description="Engine throughput in bars per second, measured on the worker.",
                unit="suffix:bars/s",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Data rows downloaded per worker",
                PanelType.TIMESERIES,
                (
                    Target(
                        "sum by (worker_id) (rate(ktrdr_data_rows_downloaded_total"
                        f"{{{WORKER_SCOPE}}}[$__rate_interval]))",
                        "{{worker_id}}",
                    ),
                ),
                unit="rowsps",
                width=12,
            ),
            Panel(
                "Training epochs per worker",
                PanelType.TIMESERIES,
                (
                    Target(
                        "sum by (worker_id) (rate(ktrdr_training_epochs_total"
                        f"{{{WORKER_SCOPE}}}[$__rate_interval]))",
                        "{{worker_id}}",
                    ),
                ),
                description="Epochs per second trained by training runs on each worker.",
                unit="suffix:epochs/s",
                width=12,
            ),
        ),
    )
