"""Write the Grafana dashboards, or check that the committed files are up to date.

python -m ktrdr.dashboards           # (re)write deploy/grafana/dashboards/*.json
python -m ktrdr.dashboards --check   # exit 1 if a committed file differs
python -m ktrdr.dashboards --jaeger-url https://jaeger.example.org --output-dir DIR
                                     # for a deployment whose Jaeger UI is elsewhere
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ktrdr.dashboards.catalog import rendered_files
from ktrdr.dashboards.constants import DASHBOARDS_DIR, JAEGER_UI_URL


def stale_files(directory: Path, jaeger_url: str = JAEGER_UI_URL) -> list[str]:
    """Names of dashboard files that are missing, different, or no longer generated."""
    expected = rendered_files(jaeger_url)
    problems = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != text
    ]
    problems += sorted(p.name for p in directory.glob("*.json") if p.name not in expected)
    return problems


def write_files(directory: Path, jaeger_url: str = JAEGER_UI_URL) -> list[Path]:
    """Write every dashboard into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered_files(jaeger_url).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ktrdr.dashboards", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DASHBOARDS_DIR,
        help=f"dashboard directory (default: {DASHBOARDS_DIR}, relative to the repo root)",
    )
    parser.add_argument(
        "--jaeger-url",
        default=JAEGER_UI_URL,
        help=f"default of the dashboards' $jaeger_url variable (default: {JAEGER_UI_URL})",
    )
    args = parser.parse_args(argv)
    directory: Path = args.output_dir
    if not directory.parent.is_dir():
        parser.error(f"{directory.parent} does not exist: run from the repository root")
    if args.check:
        problems = stale_files(directory, args.jaeger_url)
        for name in problems:
            sys.stderr.write(f"out of date: {directory / name}\n")
        if problems:
            sys.stderr.write("regenerate with: python -m ktrdr.dashboards\n")
            return 1
        sys.stdout.write(f"dashboards in {directory} are up to date\n")
        return 0
    for path in write_files(directory, args.jaeger_url):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
