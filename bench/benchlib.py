"""Helpers shared by the hand-run benchmarks: ports, machine description, result files."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
# Variables that switch span export on; the "off" side of a comparison must see none.
OTLP_ENV_PREFIXES = ("OTEL_", "KTRDR_OTLP_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def without_otlp_env() -> None:
    """Drop span-export settings from this process's environment (children inherit it)."""
    for key in [k for k in os.environ if k.startswith(OTLP_ENV_PREFIXES)]:
        del os.environ[key]


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def source() -> dict[str, object]:
    """Which ktrdr code ran: its path (a snapshot via PYTHONPATH?), commit, local edits."""
    import ktrdr

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    path = Path(ktrdr.__file__).resolve().parent
    if path.is_relative_to(REPO_ROOT):
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "src").splitlines()
    else:
        # A snapshot (``git archive HEAD src | tar -x -C SNAP; git rev-parse HEAD >
        # SNAP/COMMIT``) run through PYTHONPATH, so that others' edits to the work tree
        # cannot change the code under test halfway through a run.
        marker = path.parents[1] / "COMMIT"
        commit = marker.read_text().strip() if marker.exists() else "unknown snapshot"
        dirty = []
    return {
        "ktrdr_path": str(path),
        "pythonpath": os.environ.get("PYTHONPATH"),
        "git_commit": commit,
        "git_dirty_src": dirty,
    }


def environment(packages: Iterable[str]) -> dict[str, object]:
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": versions,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "source": source(),
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """Median, p95, min and max of durations given in seconds, in milliseconds."""
    return {
        "median_ms": statistics.median(values_s) * 1000,
        "p95_ms": percentile(values_s, 95) * 1000,
        "min_ms": min(values_s) * 1000,
        "max_ms": max(values_s) * 1000,
    }


def timestamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def write_json(stem: str, stamp: str, report: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{stem}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return out


def machine_lines(env: dict[str, object]) -> list[str]:
    """The machine and versions as Markdown bullet lines."""
    packages, source = env["packages"], env["source"]
    assert isinstance(packages, dict) and isinstance(source, dict)
    versions = ", ".join(f"{k} {v}" for k, v in packages.items())
    return [
        f"- machine: {env['platform']}, {env['machine']}, {env['cpu_count']} CPUs"
        f" ({env['cpu_model'] or 'model unknown'})",
        f"- python {env['python']}, {versions}",
        f"- load average (1, 5, 15 min) when the results were written: {env['load_average']}",
        f"- code: {source['ktrdr_path']} (commit {str(source['git_commit'])[:10]})",
    ]


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time used so far by these processes (Linux /proc, 10 ms ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        # The command name (field 2) may hold spaces; the fields after ")" are fixed.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total
