"""Operations: what is running or waiting, how much finishes, how often it fails, how long.

Every lifecycle metric is filtered to the API job: only the backend counts operations
(workers counting them too double-counted every operation in the original system).
Durations are the operations' own run time (``ktrdr_operation_duration_seconds``,
with trace-id exemplars), never the latency of the HTTP call that started them.
"""

from __future__ import annotations

from urllib.parse import quote

from ktrdr.dashboards.constants import API_JOB, JAEGER_UI_URL, WORKERS_JOB
from ktrdr.dashboards.model import (
    Dashboard,
    DashboardLink,
    Expectation,
    Link,
    Panel,
    PanelType,
    QueryVariable,
    Row,
    Target,
    TextVariable,
    Threshold,
)
from ktrdr.dashboards.promql import count_in_window, quantile

UID = "ktrdr-operations"
FILLED = Expectation.FILLED_BY_BACKTEST_WORKLOAD

SCOPE = f'job="{API_JOB}", type=~"$kind"'
FINISHED = "ktrdr_operations_finished_total"


# Every Jaeger link starts with the dashboard's $jaeger_url (default JAEGER_UI_URL).
JAEGER_URL_VARIABLE = "${jaeger_url}"
# The span that carries an operation's final failure, whatever failed it (the worker's
# report, a dispatch that gave up, the last attempt after a lost worker): the API's state
# transition to failed. (`operations.create` with error=true found only refused requests.)
FAILED_SPAN = "operation.state_transition"
FAILED_TAGS = '{"operation.to":"failed"}'


def jaeger_search_url(operation: str = "operations.create", tags: str = "") -> str:
    """Jaeger UI search for API traces of ``operation`` in the last hour."""
    url = (
        f"{JAEGER_URL_VARIABLE}/search?service=ktrdr-api&operation={operation}&lookback=1h&limit=50"
    )
    return f"{url}&tags={quote(tags)}" if tags else url


def _window(metric: str, selector: str, by: str) -> str:
    return count_in_window(f"{metric}{{{selector}}}", by)


def _quantile(q: float, metric: str, job: str = API_JOB) -> str:
    return quantile(q, f'{metric}_bucket{{job="{job}", type=~"$kind"}}', "type")


def build(jaeger_url: str = JAEGER_UI_URL) -> Dashboard:
    """``jaeger_url``: the default of the $jaeger_url variable behind every Jaeger link."""
    traces = Link("Operation traces in Jaeger", jaeger_search_url())
    failed_traces = Link("Failed operations in Jaeger", jaeger_search_url(FAILED_SPAN, FAILED_TAGS))
    return Dashboard(
        uid=UID,
        title="KTRDR / Operations",
        description=(
            "Which operations are running or queued, how many finish per hour and how many "
            "fail, how long they run and wait for a worker, and where the time goes inside "
            "a job. Click an exemplar on the duration panel to open that operation's trace."
        ),
        filename="operations.json",
        variables=(
            QueryVariable(
                "kind", "Operation type", f'ktrdr_operations_active{{job="{API_JOB}"}}', "type"
            ),
            TextVariable(
                "jaeger_url",
                "Jaeger UI",
                jaeger_url.rstrip("/"),
                "Base URL of the Jaeger UI that every trace link on this dashboard opens.",
            ),
        ),
        links=(
            DashboardLink(traces.title, traces.url, "Search ktrdr-api operation traces"),
            DashboardLink(
                failed_traces.title,
                failed_traces.url,
                "Operations that ended failed (the API's transition to failed)",
            ),
        ),
        items=(
            Row("Now"),
            Panel(
                "Active operations",
                PanelType.STAT,
                (Target(f"sum(ktrdr_operations_active{{{SCOPE}}})", "running", instant=True),),
                width=6,
                height=5,
                decimals=0,
                expectation=FILLED,
            ),
            Panel(
                "Queued operations",
                PanelType.STAT,
                (Target(f"sum(ktrdr_operations_queued{{{SCOPE}}})", "queued", instant=True),),
                description="Pending operations waiting for a free capable worker.",
                width=6,
                height=5,
                decimals=0,
                thresholds=(Threshold("green"), Threshold("orange", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Success rate (window)",
                PanelType.STAT,
                (
                    Target(
                        f'sum(increase({FINISHED}{{{SCOPE}, status="completed"}}[$__range])) / '
                        f'sum(increase({FINISHED}{{{SCOPE}, status=~"completed|failed"}}'
                        "[$__range]))",
                        "success rate",
                        instant=True,
                    ),
                ),
                description=(
                    "Completed / (completed + failed) over the dashboard window; "
                    "cancellations are a user's choice and are left out."
                ),
                unit="percentunit",
                width=6,
                height=5,
                min_value=0,
                max_value=1,
                thresholds=(Threshold("red"), Threshold("orange", 0.8), Threshold("green", 0.95)),
                expectation=FILLED,
            ),
            Panel(
                "Jaeger",
                PanelType.TEXT,
                markdown=(
                    f"[Operation traces]({traces.url}) · [Failed operations]({failed_traces.url})"
                    f" (span `{FAILED_SPAN}` with `operation.to=failed`)"
                    "\n\nEvery operation record keeps its `trace_id`: `ktrdr ops show <id>` "
                    "prints the trace link. Exemplar dots on *Operation duration* open the "
                    "trace of that very operation."
                ),
                width=6,
                height=5,
            ),
            Panel(
                "Oldest queued operation age",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"max by (type) (ktrdr_operations_oldest_queued_age_seconds{{{SCOPE}}})",
                        "{{type}}",
                    ),
                ),
                description=(
                    "How long the longest-waiting pending operation of each type has waited "
                    "(0: none queued). The queue-wait histogram only sees dispatched "
                    "operations; this shows one that is stuck."
                ),
                unit="s",
                width=24,
                expectation=FILLED,
            ),
            Panel(
                "Active and queued operations by type",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"sum by (type) (ktrdr_operations_active{{{SCOPE}}})", "active {{type}}"
                    ),
                    Target(
                        f"sum by (type) (ktrdr_operations_queued{{{SCOPE}}})", "queued {{type}}"
                    ),
                ),
                width=24,
                decimals=0,
                expectation=FILLED,
            ),
            Row("Throughput and outcomes"),
            Panel(
                "Operations per hour by type and status",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"sum by (type, status) (rate({FINISHED}{{{SCOPE}}}[$__rate_interval]))"
                        " * 3600",
                        "{{type}} {{status}}",
                    ),
                ),
                description="Operations reaching a final status, as an hourly rate.",
                unit="suffix:/h",
                width=12,
                bars=True,
                stacked=True,
                expectation=FILLED,
            ),
            Panel(
                "Finished in window by type and status",
                PanelType.BAR_GAUGE,
                (
                    Target(
                        _window(FINISHED, SCOPE, "type, status"),
                        "{{type}} {{status}}",
                        instant=True,
                    ),
                ),
                width=12,
                decimals=0,
                expectation=FILLED,
            ),
            Panel(
                "Backtests completed (window)",
                PanelType.STAT,
                (
                    Target(
                        count_in_window(f'ktrdr_backtests_completed_total{{job="{API_JOB}"}}'),
                        "backtests",
                        instant=True,
                    ),
                ),
                width=8,
                height=5,
                decimals=0,
                expectation=FILLED,
            ),
            Panel(
                "Training runs (window)",
                PanelType.STAT,
                (
                    Target(
                        _window("ktrdr_training_runs_total", f'job="{API_JOB}"', "status"),
                        "{{status}}",
                        instant=True,
                    ),
                ),
                width=8,
                height=5,
                decimals=0,
            ),
            Panel(
                "Data downloads (window)",
                PanelType.STAT,
                (
                    Target(
                        _window("ktrdr_data_downloads_total", f'job="{API_JOB}"', "status"),
                        "{{status}}",
                        instant=True,
                    ),
                ),
                width=8,
                height=5,
                decimals=0,
            ),
            Row("Durations"),
            Panel(
                "Operation duration P50 / P95 by type",
                PanelType.TIMESERIES,
                (
                    Target(
                        _quantile(0.5, "ktrdr_operation_duration_seconds"),
                        "P50 {{type}}",
                        exemplar=True,
                    ),
                    Target(
                        _quantile(0.95, "ktrdr_operation_duration_seconds"),
                        "P95 {{type}}",
                        exemplar=True,
                    ),
                ),
                description=(
                    "Run time from start to final status. Exemplar dots carry the trace_id "
                    "of a real operation and link to its Jaeger trace."
                ),
                unit="s",
                width=12,
                expectation=FILLED,
                links=(traces,),
            ),
            Panel(
                "Queue wait P50 / P95 by type",
                PanelType.TIMESERIES,
                (
                    Target(
                        _quantile(0.5, "ktrdr_operation_queue_wait_seconds"),
                        "P50 {{type}}",
                        exemplar=True,
                    ),
                    Target(
                        _quantile(0.95, "ktrdr_operation_queue_wait_seconds"),
                        "P95 {{type}}",
                        exemplar=True,
                    ),
                ),
                description="Time from submission (or re-queue) until a worker took the operation.",
                unit="s",
                width=12,
                expectation=FILLED,
            ),
            Panel(
                "Job phase duration P95 (workers)",
                PanelType.TIMESERIES,
                (
                    Target(
                        quantile(
                            0.95,
                            f'ktrdr_job_phase_duration_seconds_bucket{{job="{WORKERS_JOB}", '
                            'type=~"$kind"}',
                            "type, phase",
                        ),
                        "{{type}} {{phase}}",
                        exemplar=True,
                    ),
                ),
                description="Where the time goes inside a job: data loading, simulation, ...",
                unit="s",
                width=12,
                expectation=FILLED,
            ),
            Panel(
                "Re-queued operations (window)",
                PanelType.BAR_GAUGE,
                (
                    Target(
                        _window("ktrdr_operations_requeued_total", SCOPE, "type"),
                        "{{type}}",
                        instant=True,
                    ),
                ),
                description="Operations sent back to the queue after their worker was lost.",
                width=12,
                decimals=0,
            ),
            *campaign_panels(),
        ),
    )


def campaign_panels() -> tuple[Row | Panel, ...]:
    """Sweeps and walk-forwards (counted by the backend's campaign driver)."""
    api = f'job="{API_JOB}"'
    chunks = f"ktrdr_campaign_chunk_duration_seconds_bucket{{{api}}}"
    return (
        Row("Campaigns (sweeps, walk-forwards)"),
        Panel(
            "Campaign combinations evaluated per second",
            PanelType.TIMESERIES,
            (
                Target(
                    "sum by (type) (rate(ktrdr_campaign_combinations_evaluated_total"
                    f"{{{api}}}[$__rate_interval]))",
                    "{{type}}",
                ),
            ),
            description="Parameter sets evaluated by chunks and stored in the results table.",
            unit="short",
            width=8,
            expectation=FILLED,
        ),
        Panel(
            "Campaign chunk duration P50 / P95",
            PanelType.TIMESERIES,
            (
                Target(
                    quantile(0.5, chunks, "type"),
                    "P50 {{type}}",
                ),
                Target(
                    quantile(0.95, chunks, "type"),
                    "P95 {{type}}",
                ),
            ),
            description="Run time of one chunk operation on its worker (a slice of a sweep).",
            unit="s",
            width=8,
            expectation=FILLED,
        ),
        Panel(
            "Sweeps and walk-forwards completed (window)",
            PanelType.STAT,
            (
                Target(
                    count_in_window(f"ktrdr_sweeps_completed_total{{{api}}}"),
                    "sweeps",
                    instant=True,
                ),
                Target(
                    count_in_window(f"ktrdr_walkforwards_completed_total{{{api}}}"),
                    "walk-forwards",
                    instant=True,
                ),
            ),
            width=8,
            height=5,
            decimals=0,
            expectation=FILLED,
        ),
    )
