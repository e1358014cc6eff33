"""Prometheus configs, recording/alerting rules and their promtool unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from ktrdr.constants import API_PREFIX, DEFAULT_API_PORT
from ktrdr.dashboards.constants import API_JOB, WORKERS_JOB
from tests.deploy.conftest import (
    PROMETHEUS_CONFIGS,
    PROMETHEUS_DIR,
    RULE_FILES,
    RULE_TEST_FILES,
    load_yaml,
)
from tests.deploy.promql_text import bare_mentions, base_name, selectors

LIFECYCLE_METRICS = (
    "ktrdr_workers_registered",
    "ktrdr_workers_available",
    "ktrdr_worker_busy",
    "ktrdr_operations_active",
    "ktrdr_operations_queued",
    "ktrdr_operations_finished_total",
    "ktrdr_operation_duration_seconds",
    "ktrdr_operation_queue_wait_seconds",
    "ktrdr_worker_operations_total",
    "ktrdr_operations_requeued_total",
    "ktrdr_workers_lost_total",
)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )


def all_rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for g in load_yaml(path)["groups"] for rule in g["rules"]]


def alert_names() -> set[str]:
    return {rule["alert"] for rule in all_rules() if "alert" in rule}


def test_rule_and_test_files_exist() -> None:
    assert RULE_FILES, "deploy/prometheus/rules/*.yml is empty"
    assert RULE_TEST_FILES, "deploy/prometheus/tests/*.yml is empty"


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: p.name)
def test_promtool_check_config(promtool: str, config: Path) -> None:
    result = run(promtool, "check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", *RULE_TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: p.name)
def test_config_loads_every_rule_file(config: Path) -> None:
    patterns = load_yaml(config)["rule_files"]
    loaded = {p.resolve() for pattern in patterns for p in config.parent.glob(pattern)}
    assert loaded == {p.resolve() for p in RULE_FILES}


@pytest.mark.parametrize("config", PROMETHEUS_CONFIGS, ids=lambda p: p.name)
def test_jobs_are_api_and_workers_via_http_sd(config: Path) -> None:
    jobs = {job["job_name"]: job for job in load_yaml(config)["scrape_configs"]}
    assert {API_JOB, WORKERS_JOB} <= set(jobs)
    assert set(jobs) - {API_JOB, WORKERS_JOB} <= {"prometheus"}, "stale job names"

    api_targets = [t for sc in jobs[API_JOB]["static_configs"] for t in sc["targets"]]
    assert len(api_targets) == 1
    api_host, _, api_port = api_targets[0].rpartition(":")
    assert int(api_port) == DEFAULT_API_PORT

    workers = jobs[WORKERS_JOB]
    assert "static_configs" not in workers, "workers must come from HTTP SD, not a port list"
    (sd,) = workers["http_sd_configs"]
    assert sd["url"] == f"http://{api_host}:{api_port}{API_PREFIX}/sd/workers"


def test_exemplar_scrape_paths_are_metrics() -> None:
    for config in PROMETHEUS_CONFIGS:
        for job in load_yaml(config)["scrape_configs"]:
            if job["job_name"] in {API_JOB, WORKERS_JOB}:
                assert job.get("metrics_path", "/metrics") == "/metrics"


def test_required_alerts_exist() -> None:
    assert {
        "KtrdrServiceDown",
        "KtrdrHigh5xxRatio",
        "KtrdrHighLatencyP95",
        "KtrdrOperationsQueuedNoCapableWorker",
        "KtrdrOperationRunningTooLong",
        "KtrdrOperationFailureRatioHigh",
    } <= alert_names()


def test_every_alert_has_firing_and_not_firing_promtool_cases() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TEST_FILES:
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = alert_names()
    assert alerts - firing == set(), "alerts without a firing test case"
    assert alerts - quiet == set(), "alerts without a not-firing test case (exp_alerts: [])"
    assert (firing | quiet) - alerts == set(), "tests for alerts that do not exist"


def test_every_alert_has_severity_and_summary() -> None:
    for rule in all_rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def assert_lifecycle_metrics_filtered(expr: str) -> None:
    """Lifecycle metrics exist only on the API job: summing across jobs double counts."""
    filtered = 0
    for metric, matchers in selectors(expr):
        if base_name(metric) in LIFECYCLE_METRICS:
            assert f'job="{API_JOB}"' in matchers, f"{metric} without job filter: {expr}"
            filtered += 1
    mentions = sum(bare_mentions(expr, m) for m in LIFECYCLE_METRICS)
    assert mentions == filtered, f"lifecycle metric without a selector in: {expr}"


def test_lifecycle_metrics_in_rules_are_filtered_to_the_api_job() -> None:
    for rule in all_rules():
        assert_lifecycle_metrics_filtered(rule["expr"])


def test_lifecycle_filter_check_catches_a_missing_filter() -> None:
    with pytest.raises(AssertionError):
        assert_lifecycle_metrics_filtered("sum(rate(ktrdr_operations_finished_total[5m]))")
    with pytest.raises(AssertionError):
        assert_lifecycle_metrics_filtered('sum(ktrdr_operations_active{type="x"})')


def test_rule_tests_load_the_real_rule_files() -> None:
    for path in RULE_TEST_FILES:
        for rule_file in load_yaml(path)["rule_files"]:
            assert (path.parent / rule_file).resolve().parent == PROMETHEUS_DIR / "rules"
