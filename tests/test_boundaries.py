"""The architecture's import rules, checked in fresh interpreters."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ktrdr


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


def _import_graph() -> dict[str, set[str]]:
    """Module -> ktrdr modules it imports anywhere (top level, TYPE_CHECKING or lazily)."""
    root = Path(ktrdr.__file__).parent.parent
    files = {
        ".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): f
        for f in (root / "ktrdr").rglob("*.py")
    }

    def resolve(name: str) -> str:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ktrdr"):
                base = node.module or ""
                deps.add(resolve(base))
                deps.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files)
            elif isinstance(node, ast.Import):
                deps.update(resolve(a.name) for a in node.names if a.name.startswith("ktrdr"))
        graph[module] = deps - {module, ""}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules() -> None:
    # A package importing its own submodules (re-exports) is not a cycle between modules.
    graph = {
        m: {d for d in deps if not d.startswith(m + ".") and not m.startswith(d + ".")}
        for m, deps in _import_graph().items()
    }
    assert _cycles(graph) == []


def test_backtests_receive_models_without_importing_training() -> None:
    graph = _import_graph()
    for module in ("ktrdr.engine.backtest.runner", "ktrdr.engine.signals"):
        assert not {d for d in graph[module] if d.startswith("ktrdr.engine.training")}, module


def test_client_imports_neither_backend_engine_nor_heavy_libraries() -> None:
    # `ktrdr.client` is what researchers install and import in notebooks: it must stay light.
    loaded = loaded_after(
        "import ktrdr.client",
        (
            "ktrdr.api", "ktrdr.operations", "ktrdr.registry", "ktrdr.dispatch", "ktrdr.db",
            "ktrdr.engine", "ktrdr.jobs", "ktrdr.worker", "ktrdr.cli", "ktrdr.telemetry",
            "fastapi", "sqlalchemy", "numba", "torch", "plotly",
        ),
    )  # fmt: skip
    assert loaded == []


def test_shared_report_renderings_stand_alone() -> None:
    # Drawn by the CLI (no backend) and by the console (no Rich): they need neither.
    loaded = loaded_after(
        "import ktrdr.reports.campaigns",
        ("ktrdr.api", "ktrdr.operations", "ktrdr.engine", "ktrdr.cli", "rich", "sqlalchemy"),
    )
    assert loaded == []
