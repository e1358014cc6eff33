"""Research: what is being researched, how it turns out, and how fast the engine runs.

Runs by strategy come from ``ktrdr_research_runs_total`` (API job, counted once at the
final status). Its ``strategy`` label is bounded: a packaged example's name, or
``custom`` for every strategy sent as YAML text (its name is user input, so labelling by
it would let users create series without limit; the operation's params say which one).
Engine throughput, training curves and downloads come from the workers' own targets.
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
)
from ktrdr.dashboards.promql import count_in_window, quantile

UID = "ktrdr-research"
FILLED = Expectation.FILLED_BY_BACKTEST_WORKLOAD

RUNS = f'ktrdr_research_runs_total{{job="{API_JOB}", type=~"$type", strategy=~"$strategy"}}'
WORKERS = f'job="{WORKERS_JOB}"'
# Training gauges are 0 on a worker that never trained: show only workers that did.
TRAINED = f"ktrdr_training_epoch{{{WORKERS}}} > 0"
# Every worker exports the checkpoint counters at 0 from its start (resumes per reason
# too), so these panels read 0, not "No data", when nothing was checkpointed or resumed.
CHECKPOINTS_WRITTEN = f"ktrdr_training_checkpoints_written_total{{{WORKERS}}}"
CHECKPOINTS_RESTORED = f"ktrdr_training_checkpoints_restored_total{{{WORKERS}}}"
RESUMED_RUNS = f"ktrdr_training_resumed_runs_total{{{WORKERS}}}"
EPOCH_BUCKETS = f"ktrdr_training_epoch_duration_seconds_bucket{{{WORKERS}}}"
CHECKPOINT_BUCKETS = f"ktrdr_training_checkpoint_duration_seconds_bucket{{{WORKERS}}}"


def build() -> Dashboard:
    return Dashboard(
        uid=UID,
        title="KTRDR / Research",
        description=(
            "Backtests and training runs per hour by strategy and outcome, engine "
            "throughput per worker, training curves per run and data downloaded per provider."
        ),
        filename="research.json",
        variables=(
            QueryVariable(
                "type", "Run type", f'ktrdr_research_runs_total{{job="{API_JOB}"}}', "type"
            ),
            QueryVariable(
                "strategy",
                "Strategy",
                f'ktrdr_research_runs_total{{job="{API_JOB}"}}',
                "strategy",
            ),
        ),
        items=(*_runs(), *_engine(), *_training(), *_checkpoints(), *_data()),
    )


def _runs() -> tuple[Row | Panel, ...]:
    return (
        Row("Runs by strategy and outcome"),
        Panel(
            "Runs per hour by strategy and outcome",
            PanelType.TIMESERIES,
            (
                Target(
                    f"sum by (type, strategy, status) (rate({RUNS}[$__rate_interval])) * 3600",
                    "{{type}} {{strategy}} {{status}}",
                ),
            ),
            description="Backtests and training runs reaching a final status, hourly rate. "
            "'custom' = every strategy sent as a file rather than a packaged example.",
            unit="suffix:/h",
            width=12,
            bars=True,
            stacked=True,
            expectation=FILLED,
        ),
        Panel(
            "Runs in window by strategy and outcome",
            PanelType.BAR_GAUGE,
            (
                Target(
                    count_in_window(RUNS, "type, strategy, status") + " > 0",
                    "{{type}} {{strategy}} {{status}}",
                    instant=True,
                ),
            ),
            width=12,
            decimals=0,
            expectation=FILLED,
        ),
    )


def _engine() -> tuple[Row | Panel, ...]:
    return (
        Row("Engine"),
        Panel(
            "Bars simulated per second per worker",
            PanelType.TIMESERIES,
            (
                Target(
                    "sum by (worker_id) (rate(ktrdr_backtest_bars_simulated_total"
                    f"{{{WORKERS}}}[$__rate_interval]))",
                    "{{worker_id}}",
                ),
            ),
            unit="suffix:bars/s",
            width=24,
            expectation=FILLED,
        ),
    )


def _training() -> tuple[Row | Panel, ...]:
    return (
        Row("Training runs"),
        Panel(
            "Training epoch per run",
            PanelType.TIMESERIES,
            (Target(f"max by (worker_id) ({TRAINED})", "{{worker_id}}"),),
            description="Epoch reached by the run on each worker (one run at a time per "
            "worker, so each run is one stretch of its worker's line).",
            width=8,
            decimals=0,
            expectation=FILLED,
        ),
        Panel(
            "Validation loss per run",
            PanelType.TIMESERIES,
            (
                Target(
                    f"max by (worker_id) (ktrdr_training_validation_loss{{{WORKERS}}}"
                    f" and {TRAINED})",
                    "{{worker_id}}",
                ),
            ),
            width=8,
            expectation=FILLED,
        ),
        Panel(
            "Validation accuracy per run",
            PanelType.TIMESERIES,
            (
                Target(
                    f"max by (worker_id) (ktrdr_training_validation_accuracy{{{WORKERS}}}"
                    f" and {TRAINED})",
                    "{{worker_id}}",
                ),
            ),
            unit="percentunit",
            width=8,
            min_value=0,
            max_value=1,
            expectation=FILLED,
        ),
    )


def _checkpoints() -> tuple[Row | Panel, ...]:
    """Runs that survive a lost worker or a cancel: checkpoints, resumes, epoch times."""
    return (
        Row("Training checkpoints and resumes"),
        Panel(
            "Checkpoints written (window)",
            PanelType.STAT,
            (Target(count_in_window(CHECKPOINTS_WRITTEN), "written", instant=True),),
            description="Every checkpoint_every epochs, and before a cancel or a shutdown.",
            width=6,
            height=5,
            decimals=0,
        ),
        Panel(
            "Checkpoints restored (window)",
            PanelType.STAT,
            (Target(count_in_window(CHECKPOINTS_RESTORED), "restored", instant=True),),
            description="Checkpoints read back and verified that a run went on from.",
            width=6,
            height=5,
            decimals=0,
        ),
        Panel(
            "Resumed runs by reason (window)",
            PanelType.BAR_GAUGE,
            (Target(count_in_window(RESUMED_RUNS, "reason"), "{{reason}}", instant=True),),
            description="Runs that went on from a checkpoint instead of epoch 0: 'requeued' "
            "= the same operation after its worker was lost or stopped, 'resumed' = "
            "POST /operations/{id}/resume of a cancelled or failed run.",
            width=12,
            height=5,
            decimals=0,
        ),
        Panel(
            "Epoch duration P50 / P95",
            PanelType.TIMESERIES,
            (
                Target(quantile(0.5, EPOCH_BUCKETS), "P50"),
                Target(quantile(0.95, EPOCH_BUCKETS), "P95"),
            ),
            description="Wall time of one epoch (training pass and validation), all workers.",
            unit="s",
            width=12,
        ),
        Panel(
            "Checkpoint write / read P95",
            PanelType.TIMESERIES,
            (Target(quantile(0.95, CHECKPOINT_BUCKETS, "action"), "P95 {{action}}"),),
            description="write: one checkpoint written, fsync included; read: the newest "
            "one read back and verified before a run goes on (empty until a run resumes).",
            unit="s",
            width=12,
        ),
    )


def _data() -> tuple[Row | Panel, ...]:
    rows = f"ktrdr_data_rows_downloaded_total{{{WORKERS}}}"
    return (
        Row("Data"),
        Panel(
            "Rows downloaded per second by provider",
            PanelType.TIMESERIES,
            (Target(f"sum by (provider) (rate({rows}[$__rate_interval]))", "{{provider}}"),),
            unit="rowsps",
            width=12,
            expectation=FILLED,
        ),
        Panel(
            "Rows downloaded in window by provider",
            PanelType.BAR_GAUGE,
            (
                Target(
                    count_in_window(rows, "provider"),
                    "{{provider}}",
                    instant=True,
                ),
            ),
            width=12,
            decimals=0,
            expectation=FILLED,
        ),
    )
