"""Generated Grafana dashboards: committed == generated, queries parse and follow the rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ktrdr.dashboards import all_dashboards, rendered_files
from ktrdr.dashboards.__main__ import main as dashboards_main
from ktrdr.dashboards.constants import (
    API_JOB,
    JAEGER_DATASOURCE_UID,
    PROMETHEUS_DATASOURCE_UID,
    WORKERS_JOB,
)
from ktrdr.dashboards.model import GRID_WIDTH, Expectation
from ktrdr.dashboards.queries import (
    DEFAULT_VARIABLES,
    all_panel_queries,
    all_variable_queries,
    substitute,
    workload_panel_queries,
)
from tests.deploy.conftest import (
    DASHBOARD_PROVIDERS_FILE,
    DASHBOARDS_DIR,
    DATASOURCES_FILE,
    REPO_ROOT,
    load_yaml,
)
from tests.deploy.promql_text import base_name, selectors
from tests.deploy.test_prometheus import assert_lifecycle_metrics_filtered

EXPECTED_UIDS = {
    "system-overview.json": "ktrdr-system-overview",
    "worker-status.json": "ktrdr-worker-status",
    "operations.json": "ktrdr-operations",
    "research.json": "ktrdr-research",
}
# Every metric the dashboards may use: the telemetry contract (docs/observability.md).
CONTRACT_METRICS = {
    "up",
    "target_info",
    "http_server_duration_milliseconds",
    "http_server_active_requests",
    "http_server_request_size_bytes",
    "http_server_response_size_bytes",
    "http_client_duration_milliseconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
    "scrape_duration_seconds",
    "ktrdr_http_server_errors_total",
    "ktrdr_worker_state",
    "ktrdr_operations_oldest_queued_age_seconds",
    "ktrdr_research_runs_total",
    "ktrdr_training_epoch",
    "ktrdr_training_validation_loss",
    "ktrdr_training_validation_accuracy",
    "python_gc_collections_total",
    "python_info",
    "ktrdr_workers_registered",
    "ktrdr_workers_available",
    "ktrdr_worker_busy",
    "ktrdr_operations_active",
    "ktrdr_operations_queued",
    "ktrdr_operations_finished_total",
    "ktrdr_backtests_completed_total",
    "ktrdr_training_runs_total",
    "ktrdr_data_downloads_total",
    "ktrdr_worker_operations_total",
    "ktrdr_operations_requeued_total",
    "ktrdr_workers_lost_total",
    "ktrdr_operation_duration_seconds",
    "ktrdr_operation_queue_wait_seconds",
    "ktrdr_job_phase_duration_seconds",
    "ktrdr_backtest_bars_simulated_total",
    "ktrdr_data_rows_downloaded_total",
    "ktrdr_training_epochs_total",
    "ktrdr_training_epoch_duration_seconds",
    "ktrdr_training_checkpoints_written_total",
    "ktrdr_training_checkpoints_restored_total",
    "ktrdr_training_checkpoint_duration_seconds",
    "ktrdr_training_resumed_runs_total",
    "ktrdr_campaign_combinations_evaluated_total",
    "ktrdr_campaign_chunk_duration_seconds",
    "ktrdr_sweeps_completed_total",
    "ktrdr_walkforwards_completed_total",
}


def committed(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))
    return result


def walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object in ``node``, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += walk(value)
    elif isinstance(node, list):
        for value in node:
            found += walk(value)
    return found


# ---------------------------------------------------------------- generated == committed


def test_committed_dashboards_equal_generated_output() -> None:
    files = rendered_files()
    assert set(files) == set(EXPECTED_UIDS)
    on_disk = {p.name for p in DASHBOARDS_DIR.glob("*.json")}
    assert on_disk == set(files), "stale or missing dashboard files"
    for name, text in files.items():
        assert (DASHBOARDS_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} is out of date: run `python -m ktrdr.dashboards`"
        )


def test_check_mode_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert dashboards_main(["--check", "--output-dir", str(DASHBOARDS_DIR)]) == 0


def test_check_mode_fails_on_an_edited_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS_DIR, target)
    path = target / "operations.json"
    path.write_text(path.read_text(encoding="utf-8").replace("30s", "5s"), encoding="utf-8")
    assert dashboards_main(["--check", "--output-dir", str(target)]) == 1
    assert "operations.json" in capsys.readouterr().err
    assert dashboards_main(["--output-dir", str(target)]) == 0
    assert dashboards_main(["--check", "--output-dir", str(target)]) == 0


def test_module_runs_as_a_script_from_the_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ktrdr.dashboards", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- dashboard settings


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_dashboard_defaults(name: str) -> None:
    board = committed(name)
    assert board["uid"] == EXPECTED_UIDS[name]
    assert board["time"] == {"from": "now-1h", "to": "now"}
    assert board["refresh"] == "30s"
    assert board["templating"]["list"], "dashboards need template variables"


def test_template_variables_cover_job_instance_and_kind() -> None:
    names = {v.name for v in all_variable_queries()}
    assert {"job", "instance", "kind"} <= names
    for variable in all_variable_queries():
        assert variable.query.startswith("label_values(")
        metric = selectors(variable.selector)[0][0]
        assert base_name(metric) in CONTRACT_METRICS, variable


def test_every_datasource_reference_is_provisioned() -> None:
    provisioned = {ds["uid"]: ds["type"] for ds in load_yaml(DATASOURCES_FILE)["datasources"]}
    for name in EXPECTED_UIDS:
        for node in walk(committed(name)):
            ds = node.get("datasource")
            if isinstance(ds, dict) and ds.get("type") != "grafana":
                assert provisioned.get(ds["uid"]) == ds["type"], (name, ds)
    assert provisioned[PROMETHEUS_DATASOURCE_UID] == "prometheus"
    assert provisioned[JAEGER_DATASOURCE_UID] == "jaeger"


def test_exemplars_link_trace_id_to_the_provisioned_jaeger() -> None:
    datasources = {ds["uid"]: ds for ds in load_yaml(DATASOURCES_FILE)["datasources"]}
    destinations = datasources[PROMETHEUS_DATASOURCE_UID]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": JAEGER_DATASOURCE_UID} in destinations
    assert datasources[JAEGER_DATASOURCE_UID]["type"] == "jaeger"


def test_dashboard_provider_reads_the_mounted_directory() -> None:
    (provider,) = load_yaml(DASHBOARD_PROVIDERS_FILE)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    for name in EXPECTED_UIDS:
        cells: set[tuple[int, int]] = set()
        ids = []
        for panel in committed(name)["panels"]:
            ids.append(panel["id"])
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= GRID_WIDTH
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']} overlaps"
                    cells.add((x, y))
        assert len(ids) == len(set(ids))


# ---------------------------------------------------------------- required panels


def titles(uid: str) -> set[str]:
    return {q.panel_title for q in all_panel_queries() if q.dashboard_uid == uid}


def exprs(uid: str) -> str:
    return "\n".join(q.expr for q in all_panel_queries() if q.dashboard_uid == uid)


def test_system_overview_panels() -> None:
    text = exprs("ktrdr-system-overview")
    for needle in (
        "up{",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        'ktrdr_http_server_errors_total{job=~"$job", instance=~"$instance", status_code=~"4.."}',
        'ktrdr_http_server_errors_total{job=~"$job", instance=~"$instance", status_code=~"5.."}',
        'http_target!~"$route_exclude"',
        "process_max_fds",
        "python_gc_collections_total",
        "scrape_duration_seconds",
        "sum by (le) (rate(http_server_duration_milliseconds_bucket",
    ):
        assert needle in text
    for q in (0.5, 0.95, 0.99):
        assert f"histogram_quantile({q}, sum by (le)" in text


def test_worker_status_uses_worker_targets_not_port_patterns() -> None:
    text = exprs("ktrdr-worker-status")
    assert f'up{{job="{WORKERS_JOB}"' in text
    for metric in ("ktrdr_workers_registered", "ktrdr_workers_available", "ktrdr_worker_busy"):
        assert metric in text
    assert "ktrdr_worker_operations_total" in text
    every = "\n".join(q.expr for q in all_panel_queries())
    assert not re.search(r":\d{2,5}", every), "hard-coded ports in a dashboard query"


def test_operations_dashboard_shows_real_operation_durations_with_exemplars() -> None:
    duration = [
        q
        for q in all_panel_queries()
        if q.dashboard_uid == "ktrdr-operations" and "duration" in q.panel_title.lower()
    ]
    operation_duration = [q for q in duration if "ktrdr_operation_duration_seconds" in q.expr]
    assert operation_duration, "the operation duration histogram is on no panel"
    assert not any("http_server_duration" in q.expr for q in duration)
    board = committed("operations.json")
    targets = [
        t
        for p in board["panels"]
        for t in p.get("targets", [])
        if "ktrdr_operation_duration_seconds" in t["expr"]
    ]
    assert targets and all(t["exemplar"] for t in targets)


def test_operations_dashboard_links_to_jaeger() -> None:
    board = committed("operations.json")
    urls = [link.get("url", "") for link in board["links"]]
    assert any(url.startswith("${jaeger_url}/search?service=ktrdr-api") for url in urls)
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "jaeger_url"]
    assert variable["current"]["value"] == "http://localhost:16686"


def jaeger_links(board: dict[str, Any]) -> list[str]:
    """Every Jaeger search URL in a dashboard: dashboard links, panel links, markdown."""
    urls = [link["url"] for node in walk(board) for link in node.get("links", []) if "url" in link]
    for node in walk(board):
        content = node.get("content")
        if isinstance(content, str):
            urls += re.findall(r"\]\(([^)]*)\)", content)
    return [u for u in urls if "/search?" in u]


def grafana_interpolate(text: str, board: dict[str, Any]) -> str:
    """What Grafana does to a link: ${name} / $name -> the variable's current value."""
    for variable in board["templating"]["list"]:
        value = variable["current"]["value"]
        if isinstance(value, str):
            text = text.replace("${" + variable["name"] + "}", value)
            text = text.replace("$" + variable["name"], value)
    return text


def test_jaeger_links_follow_a_non_default_jaeger_url(tmp_path: Path) -> None:
    url = "https://tracing.example.org:8443/jaeger"
    assert dashboards_main(["--output-dir", str(tmp_path), "--jaeger-url", url + "/"]) == 0
    links = 0
    for path in sorted(tmp_path.glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "16686" not in text, f"{path.name} still hard-codes the default Jaeger port"
        board = json.loads(text)
        for link in jaeger_links(board):
            assert link.startswith("${jaeger_url}/search?"), (path.name, link)
            assert grafana_interpolate(link, board).startswith(url + "/search?service=")
            links += 1
    assert links >= 5  # dashboard links, the duration panel's link, the text panel's two


def test_failed_operations_link_searches_the_transition_to_failed() -> None:
    board = committed("operations.json")
    [failed] = [link["url"] for link in board["links"] if link["title"].startswith("Failed")]
    query = parse_qs(urlsplit(failed).query)
    assert query["service"] == ["ktrdr-api"]
    assert query["operation"] == ["operation.state_transition"]
    assert json.loads(query["tags"][0]) == {"operation.to": "failed"}


def test_window_totals_use_increase_over_the_range_never_raw_counters() -> None:
    for q in all_panel_queries():
        for metric, _ in selectors(q.expr):
            if metric.endswith(("_total", "_bucket", "_count", "_sum")):
                before = q.expr[: q.expr.index(metric)]
                assert re.search(r"(rate|increase)\($", before.rstrip()), (
                    f"{q.panel_title}: raw counter {metric}"
                )
    success = [q for q in all_panel_queries() if "Success rate" in q.panel_title]
    assert success and all("increase(" in q.expr and "[$__range]" in q.expr for q in success)


def test_lifecycle_metrics_are_filtered_to_the_api_job() -> None:
    for q in all_panel_queries():
        assert_lifecycle_metrics_filtered(q.expr)
        if "ktrdr_job_phase" in q.expr or "ktrdr_backtest_bars" in q.expr:
            assert f'job="{WORKERS_JOB}"' in q.expr
    assert API_JOB == "ktrdr-api"


def test_every_metric_is_in_the_contract() -> None:
    for q in all_panel_queries():
        for metric, _ in selectors(q.expr):
            assert base_name(metric) in CONTRACT_METRICS, (q.panel_title, metric)
        assert "http_route" not in q.expr, "the route label is http_target"


# ---------------------------------------------------------------- query helpers


def test_all_panel_queries_lists_every_target() -> None:
    queries = all_panel_queries()
    count = sum(len(p.targets) for d in all_dashboards() for p in d.panels)
    assert len(queries) == count
    assert {q.dashboard_uid for q in queries} == set(EXPECTED_UIDS.values())


def test_substitute_replaces_every_variable_form() -> None:
    expr = 'rate(x{job=~"$job", instance=~"${instance}", k=~"${kind:regex}"}[$__rate_interval])'
    assert substitute(expr, {"instance": "a:1"}) == (
        f'rate(x{{job=~"{DEFAULT_VARIABLES["job"]}", instance=~"a:1", k=~".*"}}[1m])'
    )
    assert substitute("increase(x[$__range])", {"__range": "15m"}) == "increase(x[15m])"
    assert substitute('label_replace(x, "a", "$1", "b", "(.*)")') == (
        'label_replace(x, "a", "$1", "b", "(.*)")'
    )
    with pytest.raises(KeyError, match="instnace"):
        substitute("up{instance=~'$instnace'}")


def test_every_query_substitutes_cleanly() -> None:
    for q in all_panel_queries():
        assert "$" not in substitute(q.expr), q.expr
    for v in all_variable_queries():
        assert "$" not in substitute(v.selector)


def test_workload_panels_are_listed_and_training_is_not_among_them() -> None:
    filled = workload_panel_queries()
    assert filled and all(q.expectation is Expectation.FILLED_BY_BACKTEST_WORKLOAD for q in filled)
    filled_titles = {(q.dashboard_uid, q.panel_title) for q in filled}
    assert ("ktrdr-operations", "Operation duration P50 / P95 by type") in filled_titles
    assert ("ktrdr-operations", "Training runs (window)") not in filled_titles
    assert ("ktrdr-operations", "Data downloads (window)") not in filled_titles
    for uid in EXPECTED_UIDS.values():
        assert any(q.dashboard_uid == uid for q in filled)


# ---------------------------------------------------------------- PromQL parses


def test_every_dashboard_expression_parses(promtool: str, tmp_path: Path) -> None:
    """promtool check rules parses each expression, as a recording rule."""
    rules = [
        {"record": f"ktrdr_dashboard_check:{i}", "expr": substitute(q.expr)}
        for i, q in enumerate(all_panel_queries())
    ]
    rules += [
        {"record": f"ktrdr_dashboard_variable:{i}", "expr": f"count({substitute(v.selector)})"}
        for i, v in enumerate(all_variable_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_expression_fails_the_parse_check(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    rule = {"record": "x:y", "expr": "sum by (le (rate(x[1m]))"}
    path.write_text(json.dumps({"groups": [{"name": "g", "rules": [rule]}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
