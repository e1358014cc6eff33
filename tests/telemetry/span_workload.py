"""Produce spans with telemetry configured, time it, print the timings as JSON.

Run as a subprocess (global providers are per process):

    python tests/telemetry/span_workload.py --spans 200 --endpoint http://127.0.0.1:9

Used to show that an unreachable collector neither slows span-producing code nor floods
the logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from opentelemetry import trace

from ktrdr.telemetry.metrics import JobMetrics
from ktrdr.telemetry.setup import configure_logging, setup_telemetry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=200)
    parser.add_argument("--endpoint", default=None)
    args = parser.parse_args()

    started = time.perf_counter()
    handle = setup_telemetry(
        "ktrdr-telemetry-workload", instance_id="workload-1", otlp_endpoint=args.endpoint
    )
    configure_logging("ktrdr-telemetry-workload", "INFO")
    setup_s = time.perf_counter() - started

    tracer = trace.get_tracer("ktrdr.workload")
    jobs = JobMetrics()
    log = logging.getLogger("ktrdr.workload")
    started = time.perf_counter()
    # Half plain parent/child pairs, half through JobMetrics.phase, as a worker would.
    for i in range(args.spans // 4):
        with tracer.start_as_current_span("operations.create") as span:
            span.set_attribute("i", i)
            with tracer.start_as_current_span("operation.register"):
                pass
        with jobs.phase("backtesting", "simulation"), jobs.phase("backtesting", "results"):
            pass
        if i % 10 == 0:
            log.info("workload step %d", i)
            # Give the batch processor's thread a chance to attempt (and fail) exports
            # while the workload still runs.
            time.sleep(0.01)
    workload_s = time.perf_counter() - started

    started = time.perf_counter()
    handle.shutdown(timeout_s=3.0)
    shutdown_s = time.perf_counter() - started
    print(json.dumps({"setup_s": setup_s, "workload_s": workload_s, "shutdown_s": shutdown_s}))


if __name__ == "__main__":
    main()
