"""Running `ktrdr` as a user does: a subprocess, with its output and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def ktrdr(
    *args: str,
    url: str | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 60,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`ktrdr ARGS` (with `--url URL` before the subcommand when given); `input_text` is
    what the user types (stdin)."""
    command = [sys.executable, "-m", "ktrdr.cli.main"]
    if url:
        command += ["--url", url]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
        input=input_text,
    )


def connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established TCP connection to 127.0.0.1:``port``
    (the CLI's HTTP client keeps its connection open, so this says it has asked the API)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01" and fields[9] in inodes:
            return True
    return False
