"""`ktrdr api`, `ktrdr worker`, `ktrdr up`: run the processes."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ktrdr.cli.state import ExitCode
from ktrdr.constants import DEFAULT_API_PORT, DEFAULT_WORKER_PORT
from ktrdr.local_stack import LocalStack

if TYPE_CHECKING:
    from ktrdr.local_observability import ObservabilityFiles


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``port``: binding as uvicorn does (SO_REUSEADDR, so a
    port in TIME_WAIT after a stop is free) fails only when a server holds it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def refuse_busy_ports(ports: Sequence[int]) -> None:
    """Exit 2 naming the first busy port, before anything is started or said to be."""
    from ktrdr.cli.output import print_error

    for port in ports:
        if port_in_use(port):
            print_error(
                f"port {port} is in use (another ktrdr up, or some other server); stop it "
                "or choose other ports with --api-port / --worker-port"
            )
            raise typer.Exit(ExitCode.USAGE)


def api(
    host: Annotated[str, typer.Option(envvar="KTRDR_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="KTRDR_PORT")] = DEFAULT_API_PORT,
) -> None:
    """Run the backend API (ktrdr-api)."""
    from ktrdr.config import ApiSettings
    from ktrdr.serve import serve_api

    serve_api(ApiSettings(host=host, port=port))


def worker(
    kind: Annotated[
        list[str] | None, typer.Option(help="job kind to take, repeatable; default: all")
    ] = None,
    host: Annotated[str, typer.Option(envvar="KTRDR_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="KTRDR_PORT")] = DEFAULT_WORKER_PORT,
    worker_id: Annotated[str | None, typer.Option(envvar="KTRDR_WORKER_ID")] = None,
) -> None:
    """Run a worker that registers with the API and takes jobs."""
    from ktrdr.config import WorkerSettings
    from ktrdr.serve import serve_worker

    overrides: dict[str, object] = {"host": host, "port": port, "worker_id": worker_id}
    if kind:
        overrides["kinds"] = kind
    serve_worker(WorkerSettings.model_validate(overrides))


def up(
    workers: Annotated[int, typer.Option(min=0, max=6, help="number of workers")] = 2,
    api_port: Annotated[int, typer.Option()] = DEFAULT_API_PORT,
    worker_port: Annotated[int, typer.Option(help="first worker port")] = DEFAULT_WORKER_PORT,
    data_home: Annotated[Path | None, typer.Option(envvar="KTRDR_DATA_HOME")] = None,
    observability: Annotated[
        bool,
        typer.Option(
            help="also start Prometheus (if installed) on the stack's ports and send traces "
            "to a local OTLP collector (if one listens on :4318)"
        ),
    ] = False,
    prometheus_port: Annotated[int, typer.Option(help="with --observability")] = 9090,
) -> None:
    """Start the API and N workers as local processes; Ctrl-C stops them all."""
    from ktrdr.cli.observability import Observability, start_prometheus, traces_endpoint
    from ktrdr.cli.output import console
    from ktrdr.config import default_data_home
    from ktrdr.local_observability import write_local_observability

    home = data_home or default_data_home()
    refuse_busy_ports([api_port, *(worker_port + i for i in range(workers))])
    obs = Observability()
    stack = LocalStack(
        data_home=home,
        api_port=api_port,
        worker_ports=[worker_port + i for i in range(workers)],
        extra_env=traces_endpoint(obs) if observability else {},
    )
    console.print(f"starting ktrdr-api on :{api_port} and {workers} worker(s); data in {home}")
    # Written before anything starts, so a Prometheus can be pointed at it at once.
    files = write_local_observability(
        home / "observability", f"{stack.host}:{api_port}", jaeger_url=_jaeger_url()
    )
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    # Everything inside the try: a Ctrl-C or a failure while starting must not leave
    # half the processes running.
    try:
        stack.start()
        if observability:
            start_prometheus(obs, files.prometheus_config, prometheus_port)
        _print_where(stack, files)
        for note in obs.notes:
            console.print(note)
        while not stopping:
            for process in [p for p in (stack.api, *stack.workers) if p is not None]:
                if not process.running:
                    console.print(f"[red]{process.name} exited[/]; see {process.log_path}")
                    stopping = True
            if obs.prometheus is not None and obs.prometheus.poll() is not None:
                console.print(f"[red]prometheus exited[/]; see {files.prometheus_config.parent}")
                stopping = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping…")
        obs.stop()
        stack.stop()
        console.print("stopped")


def _jaeger_url() -> str:
    from ktrdr.config import CliSettings
    from ktrdr.local_observability import DEFAULT_JAEGER_URL

    return CliSettings().jaeger_ui_url or DEFAULT_JAEGER_URL


def _print_where(stack: LocalStack, files: ObservabilityFiles) -> None:
    from ktrdr.cli.output import console

    console.print(f"console   {stack.api_url}/")
    console.print(f"API       {stack.api_url}  (docs {stack.api_url}/docs)")
    console.print(f"metrics   {stack.api_url}/metrics")
    for process in stack.workers:
        console.print(f"worker    {process.url}  log {process.log_path}")
    config = files.prometheus_config
    console.print(
        f"prometheus --config.file={config} --enable-feature=exemplar-storage "
        f"--storage.tsdb.path={config.parent / 'prometheus-data'}",
        soft_wrap=True,
    )
    if files.grafana_provisioning is not None:
        console.print(
            f"grafana   GF_PATHS_PROVISIONING={files.grafana_provisioning} grafana-server …",
            soft_wrap=True,
        )
    console.print("[dim]Ctrl-C stops everything[/]")
