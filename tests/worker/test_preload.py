"""Training workers import PyTorch before they register; other workers never import it."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from ktrdr.operations.model import OperationType
from ktrdr.worker.app import preload_libraries
assert "torch" not in sys.modules, "imported before preloading"
preload_libraries([OperationType(k) for k in sys.argv[1:]])
print("torch" in sys.modules)
"""


@pytest.mark.parametrize(
    ("kinds", "imported"),
    [(["training"], "True"), (["backtesting", "data_download"], "False")],
)
def test_torch_is_imported_up_front_only_for_training_workers(
    kinds: list[str], imported: str
) -> None:
    pytest.importorskip("torch")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *kinds], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == imported
