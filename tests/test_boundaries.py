"""The architecture's import rules, checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys


def loaded_after(import_line: str, packages: tuple[str, ...]) -> list[str]:
    """Modules of `packages` (or the packages themselves) loaded by `import_line`."""
    probe = (
        f"import sys; {import_line}; p = {packages!r}; "
        "print('\\n'.join(sorted(m for m in sys.modules "
        "if m in p or m.startswith(tuple(x + '.' for x in p)))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_backend_never_imports_runners_or_the_engines() -> None:
    loaded = loaded_after(
        "import ktrdr.api.app",
        ("ktrdr.worker", "ktrdr.engine.backtest", "ktrdr.engine.training", "numba", "torch"),
    )
    assert loaded == []


def test_engine_imports_no_http_database_or_telemetry() -> None:
    loaded = loaded_after(
        "import ktrdr.engine.backtest, ktrdr.engine.data, ktrdr.engine.strategy, "
        "ktrdr.engine.fuzzy, ktrdr.engine.indicators, ktrdr.engine.training",
        ("fastapi", "sqlalchemy", "httpx", "opentelemetry", "ktrdr.telemetry", "ktrdr.api"),
    )
    assert loaded == []


def test_worker_never_imports_the_store() -> None:
    loaded = loaded_after("import ktrdr.worker.app", ("sqlalchemy", "ktrdr.db", "alembic"))
    assert loaded == []


def test_torch_loads_only_when_a_model_is_trained_or_used() -> None:
    # PyTorch is an optional extra and costs seconds to import: workers, backtests with
    # rule-based strategies and the CLI must start without it.
    loaded = loaded_after(
        "import ktrdr.worker.app, ktrdr.engine.backtest, ktrdr.engine.training, ktrdr.cli.main",
        ("torch",),
    )
    assert loaded == []
