"""System Overview: is every KTRDR process up, how busy is it, is it failing or slow?"""

from __future__ import annotations

from ktrdr.dashboards.constants import DEFAULT_ROUTE_EXCLUDE, KTRDR_JOBS_REGEX
from ktrdr.dashboards.model import (
    Dashboard,
    Expectation,
    Panel,
    PanelType,
    QueryVariable,
    Row,
    Target,
    TextVariable,
    Threshold,
    ValueText,
)
from ktrdr.dashboards.promql import quantile

UID = "ktrdr-system-overview"
FILLED = Expectation.FILLED_BY_BACKTEST_WORKLOAD

# $job / $instance narrow every panel; "All" for job means every ktrdr-* job.
SCOPE = 'job=~"$job", instance=~"$instance"'
# Request rate and latency: $route picks route templates, $route_exclude (default: worker
# heartbeats and progress reports) leaves the platform's own chatter out.
ROUTES = f'{SCOPE}, http_target=~"$route", http_target!~"$route_exclude"'
REQUESTS = f"http_server_duration_milliseconds_count{{{ROUTES}}}"
BUCKETS = f"http_server_duration_milliseconds_bucket{{{ROUTES}}}"
# Errors come from ktrdr_http_server_errors_total: its series exist at 0 from process
# start, so the first 404 shows (a histogram series born at 1 is invisible to rate()).
ERRORS = "ktrdr_http_server_errors_total"
UP_MAPPINGS = (ValueText(0, "DOWN", "red"), ValueText(1, "UP", "green"))


def _rate(selector: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({selector}[$__rate_interval]))"


def _status(status_regex: str) -> str:
    """Error counter selector restricted to status codes matching ``status_regex``."""
    return f'{ERRORS}{{{SCOPE}, status_code=~"{status_regex}"}}'


def _errors(status_regex: str) -> str:
    return _rate(_status(status_regex))


def _quantile(q: float, by: str = "") -> str:
    return quantile(q, BUCKETS, by)


def build() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="KTRDR / System Overview",
        description=(
            "Is every KTRDR process up, how much traffic does it serve, how many requests "
            "fail and how slow are they, and what CPU and memory does each process use?"
        ),
        filename="system-overview.json",
        variables=(
            QueryVariable(
                "job", "Job", f'up{{job=~"{KTRDR_JOBS_REGEX}"}}', "job", KTRDR_JOBS_REGEX
            ),
            QueryVariable("instance", "Instance", 'up{job=~"$job"}', "instance"),
            QueryVariable(
                "route",
                "Route",
                'http_server_duration_milliseconds_count{job=~"$job"}',
                "http_target",
            ),
            TextVariable(
                "route_exclude",
                "Exclude routes (regex)",
                DEFAULT_ROUTE_EXCLUDE,
                "Routes left out of request rate and latency; empty the box to see them all.",
            ),
        ),
        items=(
            Row("Health"),
            Panel(
                "Service health",
                PanelType.STAT,
                (Target(f"up{{{SCOPE}}}", "{{job}} {{instance}}", instant=True),),
                description="Prometheus scrape of each target: UP or DOWN.",
                width=16,
                height=5,
                mappings=UP_MAPPINGS,
                thresholds=(Threshold("red"), Threshold("green", 1)),
                expectation=FILLED,
            ),
            Panel(
                "Uptime",
                PanelType.STAT,
                (
                    Target(
                        f"time() - process_start_time_seconds{{{SCOPE}}}",
                        "{{job}} {{instance}}",
                        instant=True,
                    ),
                ),
                description="Time since each process started; a reset means a restart.",
                unit="s",
                width=8,
                height=5,
                expectation=FILLED,
            ),
            Row("Traffic"),
            Panel(
                "Request rate",
                PanelType.TIMESERIES,
                (Target(_rate(REQUESTS), "requests/s"),),
                description="HTTP requests served per second, all selected processes.",
                unit="reqps",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Request rate by service",
                PanelType.TIMESERIES,
                (Target(_rate(REQUESTS, "job"), "{{job}}"),),
                unit="reqps",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Active requests",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"sum by (job) (http_server_active_requests{{{SCOPE}}})",
                        "{{job}}",
                    ),
                ),
                description="Requests in flight at scrape time.",
                width=8,
                expectation=FILLED,
            ),
            Row("Errors"),
            Panel(
                "4xx error rate",
                PanelType.TIMESERIES,
                (Target(_errors("4.."), "4xx/s"),),
                description="Client errors per second (bad input, unknown ids, auth).",
                unit="reqps",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "5xx error rate",
                PanelType.TIMESERIES,
                (Target(_errors("5.."), "5xx/s"),),
                description="Server errors per second; any sustained value is a bug. Reads 0, "
                "not 'no data', when there were none.",
                unit="reqps",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Errors by status code",
                PanelType.TIMESERIES,
                (
                    Target(
                        _rate(_status("[45].."), "job, status_code") + " > 0",
                        "{{job}} {{status_code}}",
                    ),
                ),
                description="Only codes that occurred: every code has a series at 0.",
                unit="reqps",
                width=8,
                stacked=True,
            ),
            Row("Latency"),
            Panel(
                "Latency P50 / P95 / P99",
                PanelType.TIMESERIES,
                (
                    Target(_quantile(0.5), "P50"),
                    Target(_quantile(0.95), "P95"),
                    Target(_quantile(0.99), "P99"),
                ),
                description="Server-side request latency over all selected processes.",
                unit="ms",
                width=12,
                expectation=FILLED,
            ),
            Panel(
                "P95 latency by service",
                PanelType.TIMESERIES,
                (Target(_quantile(0.95, "job"), "{{job}}"),),
                unit="ms",
                width=12,
                expectation=FILLED,
            ),
            Panel(
                "Slowest routes (P95 over the window)",
                PanelType.TABLE,
                (
                    Target(
                        "topk(10, histogram_quantile(0.95, sum by (job, http_method, "
                        f"http_target, le) (increase({BUCKETS}[$__range]))))",
                        instant=True,
                        table=True,
                    ),
                ),
                description=(
                    "Route templates (label http_target) with the highest P95 latency over "
                    "the dashboard window."
                ),
                unit="ms",
                width=24,
                expectation=FILLED,
            ),
            Row("Resources"),
            Panel(
                "CPU per service",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"sum by (job, instance) (rate(process_cpu_seconds_total{{{SCOPE}}}"
                        "[$__rate_interval]))",
                        "{{job}} {{instance}}",
                    ),
                ),
                description="CPU cores used (1 = one full core).",
                unit="short",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Memory per service",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"process_resident_memory_bytes{{{SCOPE}}}",
                        "{{job}} {{instance}}",
                    ),
                ),
                description="Resident memory of each process.",
                unit="bytes",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Open file descriptors",
                PanelType.TIMESERIES,
                (Target(f"process_open_fds{{{SCOPE}}}", "{{job}} {{instance}}"),),
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "File descriptors used (of the limit)",
                PanelType.TIMESERIES,
                (
                    Target(
                        f"process_open_fds{{{SCOPE}}} / process_max_fds{{{SCOPE}}}",
                        "{{job}} {{instance}}",
                    ),
                ),
                description="Resource exhaustion: at 100 % a process can accept no connection.",
                unit="percentunit",
                width=8,
                min_value=0,
                max_value=1,
                expectation=FILLED,
            ),
            Panel(
                "GC collections",
                PanelType.TIMESERIES,
                (
                    Target(
                        "sum by (job, instance, generation) (rate(python_gc_collections_total"
                        f"{{{SCOPE}}}[$__rate_interval]))",
                        "{{job}} {{instance}} gen {{generation}}",
                    ),
                ),
                description="Python garbage collections per second, by generation.",
                unit="ops",
                width=8,
                expectation=FILLED,
            ),
            Panel(
                "Scrape duration",
                PanelType.TIMESERIES,
                (Target(f"scrape_duration_seconds{{{SCOPE}}}", "{{job}} {{instance}}"),),
                description="How long Prometheus takes to read each /metrics.",
                unit="s",
                width=8,
                expectation=FILLED,
            ),
        ),
    )
