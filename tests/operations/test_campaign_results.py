"""The campaign results table on SQLite and PostgreSQL: a chunk's rows stored once however
often they are collected, counted as new only the first time, read back in combination
order exactly as they were written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ktrdr.campaigns.results import CampaignResults
from ktrdr.operations.store import Store

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _row(index: int, window: int | None = None) -> dict[str, Any]:
    key = f"{index}" if window is None else f"w{window}/{index}"
    return {
        "key": key, "index": index, "window": window, "stage": "sweep",
        "params": {"indicators.fast.params.period": 5 + index, "mode": "long_only"},
        "statistics": {"sharpe_ratio": 0.5 + index / 10, "total_trades": index, "calmar": None},
        "extra": {"block_returns": [0.01 * index, -0.02, None]} if index % 2 else None,
    }  # fmt: skip


def test_rows_are_stored_once_and_counted_new_once(store: Store) -> None:
    results = CampaignResults(store)
    first = [_row(i) for i in (4, 0, 2)]
    assert results.insert("op_sweep", "chunk_a", first, NOW) == 3
    assert results.insert("op_sweep", "chunk_a", first, NOW) == 0, "collected again"
    # A re-run chunk (its worker was killed) brings one old combination and a new one.
    assert results.insert("op_sweep", "chunk_b", [_row(2), _row(1)], NOW) == 1
    assert results.insert("op_other", "chunk_c", [_row(2)], NOW) == 1, "another campaign"
    assert results.insert("op_sweep", "chunk_d", [], NOW) == 0

    listed = results.list("op_sweep")
    assert [r.combination for r in listed] == [0, 1, 2, 4]
    by_key = {r.key: r for r in listed}
    assert by_key["2"].chunk_id == "chunk_a", "the first stored row stays"
    for index in (0, 1, 2, 4):
        want = _row(index)
        got = by_key[str(index)]
        assert (got.params, got.statistics, got.extra) == (
            want["params"], want["statistics"], want["extra"],
        )  # fmt: skip
        assert got.window is None and got.stage == "sweep"
    assert results.count("op_sweep") == 4
    assert results.collected_chunks("op_sweep") == {"chunk_a", "chunk_b"}


def test_rows_filter_by_window_and_stage(store: Store) -> None:
    results = CampaignResults(store)
    results.insert("op_wf", "c1", [_row(1, window=1), _row(0, window=1)], NOW)
    results.insert("op_wf", "c0", [_row(3, window=0)], NOW)
    oos = {**_row(9, window=0), "key": "w0/oos", "stage": "out_of_sample"}
    results.insert("op_wf", "c2", [oos], NOW)
    assert [(r.window, r.combination) for r in results.list("op_wf")] == [
        (0, 3), (0, 9), (1, 0), (1, 1),
    ]  # fmt: skip
    assert [r.key for r in results.list("op_wf", window=1)] == ["w1/0", "w1/1"]
    assert [r.key for r in results.list("op_wf", stage="out_of_sample")] == ["w0/oos"]
    assert results.count("op_wf", stage="sweep") == 3
