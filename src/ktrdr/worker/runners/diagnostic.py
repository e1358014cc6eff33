"""The diagnostic job: `steps` steps of `step_ms` ms with progress; fails on request.

Used by the platform's own tests, `ktrdr doctor` and the dispatch benchmark. It does
no real work, so what it measures is the platform.
"""

from __future__ import annotations

import time
from typing import Any

from ktrdr.jobs.diagnostic import DiagnosticParams
from ktrdr.worker.job import JobContext

PHASES = ("steps",)


class DiagnosticFailure(RuntimeError):
    """The failure a diagnostic operation was asked to produce."""


def _failure(step: int, label: str | None) -> DiagnosticFailure:
    # The label is user text carried into the error: the console's escaping is tested on it.
    suffix = f" ({label})" if label else ""
    return DiagnosticFailure(f"diagnostic failure requested at step {step}{suffix}")


def run_diagnostic(ctx: JobContext) -> dict[str, Any]:
    params = DiagnosticParams.model_validate(ctx.params)
    started = time.perf_counter()
    started_wall = time.time()
    with ctx.phase("steps", span_prefix="diagnostic") as span:
        span.set_attribute("diagnostic.steps", params.steps)
        for step in range(params.steps):
            ctx.check_cancelled()
            if params.fail_at_step is not None and step == params.fail_at_step:
                raise _failure(step, params.label)
            # Sleep in small slices so a cancel is honoured quickly even for long steps.
            deadline = time.perf_counter() + params.step_ms / 1000
            while (remaining := deadline - time.perf_counter()) > 0:
                time.sleep(min(remaining, 0.05))
                ctx.check_cancelled()
            ctx.progress(
                100.0 * (step + 1) / params.steps,
                phase="steps",
                message=f"step {step + 1}/{params.steps}",
                items_done=step + 1,
                items_total=params.steps,
            )
        if params.fail_at_step is not None and params.fail_at_step >= params.steps:
            raise _failure(params.fail_at_step, params.label)
    return {
        "metrics": {
            "steps": params.steps,
            "step_ms": params.step_ms,
            "elapsed_s": round(time.perf_counter() - started, 6),
        },
        "label": params.label,
        # The worker's own record of when it ran the job: lets tests prove that one
        # worker never ran two jobs at once, from the worker's side.
        "worker_id": ctx.worker_id,
        "attempt": ctx.attempt,
        "started_unix_s": started_wall,
        "ended_unix_s": time.time(),
    }
