"""`ktrdr demo`: the README's main job on the embedded default (local processes, SQLite)."""

from __future__ import annotations

from ktrdr.cli import ops
from ktrdr.cli.client import ApiClient
from ktrdr.cli.output import console
from ktrdr.config import default_data_home
from ktrdr.local_stack import LocalStack


def run_demo(*, workers: int, api_port: int, worker_port: int) -> int:
    home = default_data_home() / "demo"
    stack = LocalStack(
        data_home=home,
        api_port=api_port,
        worker_ports=[worker_port + i for i in range(workers)],
    )
    console.print(f"starting the local stack (API :{api_port}, {workers} workers, data {home})")
    stack.start()
    try:
        client = ApiClient(stack.api_url)
        console.print("running a diagnostic operation through API → dispatcher → worker")
        op = client.post("/diagnostics/start", {"steps": 20, "step_ms": 50, "label": "demo"})
        final = ops.follow(client, op["id"])
        return ops.exit_code_for(final)
    finally:
        console.print("stopping the local stack")
        stack.stop()
