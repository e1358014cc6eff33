"""Checks of a completed training run's history artifact against the engine's own history,
through the API's table route in JSON, CSV and Parquet (shared by the training tests)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ktrdr.engine.training import EpochReport
from tests.support.stack import Api

COLUMNS = [f.name for f in fields(EpochReport)]


def _json_value(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _same(a: Any, b: Any) -> bool:
    """Equal to the last bit; NaN (what the engine reports for a loss it could not compute)
    equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def served_history(api: Api, op_id: str, fmt: str) -> Any:
    response = api.http.get(f"/operations/{op_id}/results/history", params={"format": fmt})
    assert response.status_code == 200, response.text
    if fmt == "json":
        assert response.headers["content-type"] == "application/json"
        return json.loads(response.content)
    if fmt == "csv":
        assert response.headers["content-type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(response.text)))
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    return pq.read_table(io.BytesIO(response.content))


def assert_history_served(
    api: Api, op: dict[str, Any], history: list[EpochReport], data_home: Path
) -> None:
    """The record references the history (key, checksum of the file as stored) and holds
    no epochs; every format of /results/history is ``history`` exactly, and so are the
    inline ``history`` of /results and the completed run's /curve."""
    result = op["result"]
    assert "history" not in result, "the record holds a reference, not the epochs"
    ref = result["artifacts"]["history"]
    assert ref["key"] == f"operations/{op['id']}/attempt-{op['attempt']}/history.arrow"
    assert ref["rows"] == len(history) == result["metrics"]["epochs_run"]
    stored = (data_home / "artifacts" / ref["key"]).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == ref["sha256"]
    assert ref["size_bytes"] == len(stored)
    best = next(h for h in history if h.epoch == result["metrics"]["best_epoch"])
    assert result["metrics"]["best_val_loss"] == best.val_loss

    expected = [{k: _json_value(v) for k, v in asdict(h).items()} for h in history]
    assert served_history(api, op["id"], "json") == expected

    table = served_history(api, op["id"], "parquet")
    assert table.column_names == COLUMNS
    for name in COLUMNS:
        got, want = table.column(name).to_pylist(), [getattr(h, name) for h in history]
        assert len(got) == len(want) and all(map(_same, got, want)), name

    rows = served_history(api, op["id"], "csv")
    assert [list(r) for r in rows[:1]] == [COLUMNS]
    parsed = [
        {k: (int(v) if k.startswith("epoch") else float(v) if v else None) for k, v in r.items()}
        for r in rows
    ]
    assert parsed == expected

    inline = api.http.get(f"/operations/{op['id']}/results").json()
    assert inline["history"] == expected
    curve = api.http.get(f"/operations/{op['id']}/curve").json()
    assert [
        {"epoch": p["epoch"], "train_loss": p["train_loss"], "val_loss": p["val_loss"],
         "val_accuracy": p["val_accuracy"]}
        for p in curve["points"]
    ] == [{k: v for k, v in row.items() if k != "epochs"} for row in expected]  # fmt: skip
    assert curve["epochs_total"] == history[-1].epochs
