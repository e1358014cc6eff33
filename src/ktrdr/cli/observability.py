"""`ktrdr up --observability`: Prometheus beside the local stack, traces to a collector.

Prometheus runs when its binary is installed (Debian: ``apt-get install prometheus``),
on the configuration `ktrdr up` writes for the stack's real ports
(:mod:`ktrdr.local_observability`). Traces go to an OTLP collector
(Jaeger all-in-one, an OpenTelemetry Collector) when one listens on the standard
OTLP/HTTP port, unless an endpoint is configured already. Grafana and Jaeger are not in
the package registries: docs/observability.md says how to add them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

OTLP_HTTP_PORT = 4318
_ENDPOINT_VARS = ("KTRDR_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def prometheus_binary() -> str | None:
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None


def local_collector(host: str = "127.0.0.1", port: int = OTLP_HTTP_PORT) -> str | None:
    """The OTLP/HTTP base URL of a collector listening locally, else None."""
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return f"http://{host}:{port}"
    except OSError:
        return None


@dataclass
class Observability:
    """What `ktrdr up --observability` started; :meth:`stop` ends it."""

    notes: list[str] = field(default_factory=list)
    otlp_endpoint: str | None = None
    prometheus: subprocess.Popen[bytes] | None = None
    prometheus_url: str | None = None

    def stop(self) -> None:
        if self.prometheus is not None and self.prometheus.poll() is None:
            self.prometheus.terminate()
            try:
                self.prometheus.wait(10)
            except subprocess.TimeoutExpired:
                self.prometheus.kill()
                self.prometheus.wait(5)


def traces_endpoint(obs: Observability) -> dict[str, str]:
    """Environment for the stack's processes: the local collector, if no endpoint is set."""
    if any(os.environ.get(name) for name in _ENDPOINT_VARS):
        obs.notes.append("traces: to the OTLP endpoint already configured")
        return {}
    endpoint = local_collector()
    if endpoint is None:
        obs.notes.append(
            f"traces: no OTLP collector on :{OTLP_HTTP_PORT} (start Jaeger all-in-one or an "
            "OpenTelemetry Collector, see docs/observability.md); spans are not exported"
        )
        return {}
    obs.otlp_endpoint = endpoint
    obs.notes.append(f"traces: to the collector at {endpoint}")
    return {"KTRDR_OTLP_ENDPOINT": endpoint}


def start_prometheus(obs: Observability, config: Path, port: int) -> None:
    """Run Prometheus on ``config`` (its data beside it) on 127.0.0.1:``port``."""
    binary = prometheus_binary()
    if binary is None:
        obs.notes.append(
            "metrics: Prometheus not installed (Debian: apt-get install prometheus); "
            "the stack serves /metrics anyway"
        )
        return
    directory = config.parent
    with (directory / "prometheus.log").open("ab") as log:
        obs.prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only `ktrdr up`, which stops it
        )
    obs.prometheus_url = f"http://127.0.0.1:{port}"
    obs.notes.append(f"metrics: Prometheus running at {obs.prometheus_url} on {config}")
