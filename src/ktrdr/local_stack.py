"""Start the API and N workers as local processes (used by `ktrdr up`, the demo,
the integration tests and the benchmarks): the embedded default, no Docker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ktrdr.constants import API_PREFIX


class StackError(RuntimeError):
    pass


@dataclass
class ManagedProcess:
    name: str
    url: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # Run through another command first (e.g. `ip netns exec NS`: a host of its own).
    command_prefix: Sequence[str] = ()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        with log, _ctrl_c_after_spawn():
            self.process = subprocess.Popen(
                [*self.command_prefix, sys.executable, "-m", "ktrdr.cli.main", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches only `ktrdr up`
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL: workers get to report or re-queue their job."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, as the liveness tests need."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def _ctrl_c_after_spawn() -> Iterator[None]:
    """A Ctrl-C that arrives while a child is being spawned is raised once the child is
    recorded: raised inside ``Popen`` (it waits for the exec), it lost a running child that
    ``stop()`` then never stopped. (A handler set here is reset by the child's exec.)"""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield  # started in the background: a Ctrl-C is not ours to raise
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if caught:
        raise KeyboardInterrupt


@dataclass
class LocalStack:
    data_home: Path
    api_port: int = 8000
    worker_ports: Sequence[int] = (5003,)
    worker_kinds: Sequence[str] = ()
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Per worker port: more variables (e.g. its kinds). With separate_worker_homes each
    # worker has a data home of its own (as on separate hosts sharing only an object store).
    worker_env: dict[int, dict[str, str]] = field(default_factory=dict)
    separate_worker_homes: bool = False
    api: ManagedProcess | None = None
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"KTRDR_DATA_HOME": str(self.data_home), "KTRDR_API_URL": self.api_url})
        env.update(self.extra_env)
        return env

    def start(self, timeout_s: float = 30.0) -> None:
        self.start_api(timeout_s)
        for port in self.worker_ports:
            self.start_worker(port)
        self.wait_for_workers(len(self.worker_ports), timeout_s)

    def start_api(self, timeout_s: float = 30.0) -> ManagedProcess:
        if self.api is None:
            self.api = ManagedProcess(
                "ktrdr-api",
                self.api_url,
                ["api", "--host", self.host, "--port", str(self.api_port)],
                self._env(),
                self.data_home / "logs" / "api.log",
            )
        self.api.start()
        self._wait_ready(self.api, f"{self.api_url}{API_PREFIX}/health", timeout_s)
        return self.api

    def worker_home(self, port: int) -> Path:
        return self.data_home / f"worker-{port}" if self.separate_worker_homes else self.data_home

    def start_worker(self, port: int) -> ManagedProcess:
        args = ["worker", "--host", self.host, "--port", str(port)]
        for kind in self.worker_kinds:
            args += ["--kind", kind]
        env = {**self._env(), "KTRDR_DATA_HOME": str(self.worker_home(port))}
        # Workers sharing this host share its cores: unless told otherwise each runs its
        # kernels on its share of them (2 workers on 2 cores: 1 thread each, not 2 that
        # would take turns with the other worker's).
        env.setdefault("KTRDR_BACKTEST_THREADS", str(self.threads_per_worker()))
        worker = ManagedProcess(
            f"worker-{port}",
            f"http://{self.host}:{port}",
            args,
            {**env, **self.worker_env.get(port, {})},
            self.data_home / "logs" / f"worker-{port}.log",
        )
        self.workers.append(worker)  # before the start: a Ctrl-C then still stops it
        worker.start()
        return worker

    def threads_per_worker(self) -> int:
        return max(1, (os.cpu_count() or 1) // max(1, len(self.worker_ports)))

    def wait_for_workers(self, count: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        online = 0
        while time.monotonic() < deadline:
            try:
                # /health, not /workers: it needs no user API key when keys are configured.
                body = httpx.get(f"{self.api_url}{API_PREFIX}/health", timeout=2).json()
                online = body["workers_online"]
                if online >= count:
                    return
            except httpx.HTTPError:
                pass
            for worker in self.workers:
                if not worker.running:
                    raise StackError(f"{worker.name} exited:\n{worker.log_tail()}")
            time.sleep(0.1)
        raise StackError(f"only {online} of {count} workers registered in {timeout_s:.0f}s")

    @staticmethod
    def _wait_ready(process: ManagedProcess, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not process.running:
                raise StackError(f"{process.name} exited:\n{process.log_tail()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StackError(f"{process.name} not ready after {timeout_s:.0f}s:\n{process.log_tail()}")

    def stop(self) -> None:
        # Workers first, so they can still report to the API on the way out.
        for worker in self.workers:
            worker.stop()
        if self.api is not None:
            self.api.stop()
