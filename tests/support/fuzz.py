"""Schemathesis against a real API process: every route of its OpenAPI document, with and
without the worker token, must never answer a 5xx.

The test suite runs a small fixed-seed budget (tests/api/test_bad_input.py); `./run fuzz`
runs this module for the large one on SQLite and PostgreSQL:

    python -m tests.support.fuzz [--max-examples 200] [--seed 20261201] [--phases ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

TOKEN = "fuzz-token-5b1e"
SEED = 20261201
# Routes that only a worker (holder of the token) may call: fuzzed without it too.
WORKER_ROUTES = r"^/api/v1/(workers/|operations/\{operation_id\}/(progress|report))"


def schemathesis(
    base_url: str,
    *,
    token: str | None,
    max_examples: int,
    phases: str,
    seed: int = SEED,
    only_worker_routes: bool = False,
    report_dir: Path | None = None,
    workers: int = 2,
) -> subprocess.CompletedProcess[str]:
    """Run the schemathesis CLI once; its exit code is 0 when no check failed."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--phases",
        phases,
        "--workers",
        str(workers),
        "--request-timeout",
        "30",
        "--no-color",
        "--warnings",
        "off",
        # No example database: runs stay reproducible from the seed alone.
        "--generation-database",
        "none",
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    if only_worker_routes:
        command += ["--include-path-regex", WORKER_ROUTES]
    if report_dir is not None:
        command += ["--report", "junit", "--report-dir", str(report_dir)]
    with tempfile.TemporaryDirectory(prefix="ktrdr-schemathesis-") as scratch:
        # Run in a scratch directory: the CLI keeps state files in its working directory.
        return subprocess.run(
            command, capture_output=True, text=True, timeout=3600, check=False, cwd=scratch
        )


def _one_backend(name: str, database_url: str | None, args: argparse.Namespace) -> bool:
    from tests.support.stack import StackFactory

    env = {"KTRDR_API_TOKEN": TOKEN}
    if database_url:
        env["KTRDR_DATABASE_URL"] = database_url
    factory = StackFactory(Path(tempfile.mkdtemp(prefix=f"ktrdr-fuzz-{name}-")))
    ok = True
    try:
        _, api = factory.start(workers=1, env=env)
        for token in (TOKEN, None):
            run = schemathesis(
                api.base_url,
                token=token,
                max_examples=args.max_examples,
                phases=args.phases,
                seed=args.seed,
            )
            label = f"{name}, {'with' if token else 'without'} the worker token"
            print(f"--- {label}: exit {run.returncode}\n{run.stdout[-4000:]}", flush=True)
            ok = ok and run.returncode == 0
    finally:
        try:
            factory.stop_all()
        except AssertionError as exc:  # a 500 in a log
            print(exc, flush=True)
            ok = False
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    results = []
    if args.backend in ("sqlite", "both"):
        results.append(_one_backend("sqlite", None, args))
    if args.backend in ("postgresql", "both"):
        from tests.conftest import _postgres_reason, _scratch_database

        reason = _postgres_reason()
        if reason:
            print(f"--- postgresql skipped: {reason}")
        else:
            database = _scratch_database()
            try:
                results.append(_one_backend("postgresql", next(database), args))
            finally:
                next(database, None)
    print("fuzz: " + ("no server errors" if all(results) else "SERVER ERRORS FOUND"))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
