"""docs/examples/quickstart.ipynb runs top to bottom against the real stack (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.client.conftest import ClientStack

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).parents[2] / "docs" / "examples" / "quickstart.ipynb"


def _outputs(cell: nbformat.NotebookNode, mime: str) -> str:
    return "".join(
        str(o.get("data", {}).get(mime, "")) + str(o.get("text", ""))
        for o in cell.get("outputs", [])
    )


def test_quickstart_notebook_executes_against_the_stack(
    client_stack: ClientStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KTRDR_API_URL", client_stack.url)
    monkeypatch.setenv("KTRDR_API_KEY", client_stack.key("admin"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert _outputs(code[0], "text/plain") == "[('EURUSD', '1h', 3000)]"

    view = _outputs(code[1], "text/html")
    assert "Total return %" in view and "<svg" in view and "polyline" in view
    assert "<progress value='100.0' max='100'></progress> backtesting" in view  # updated bar
    # the notebook's numbers are the API's: the same backtest through the client
    latest = client_stack.client.operations(type="backtesting", limit=1).data[0]
    stats = client_stack.client.backtest_result(latest).stats
    assert f"{stats['num_trades']}" in _outputs(code[2], "text/plain")
    assert "application/vnd.plotly.v1+json" in code[5].outputs[0]["data"]
    assert "unknown strategy 'sma_crosover'" in _outputs(code[6], "text/plain")
