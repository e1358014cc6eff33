"""What a grid or random campaign evaluates, decided from its parameters alone (so the
backend plans again after a restart and gets the same answer), and how it is chunked."""

from __future__ import annotations

from typing import Any

from ktrdr.jobs.campaigns import SearchMethod, SweepParams, search_space


def combinations(params: SweepParams) -> list[dict[str, Any]]:
    """Every parameter set the campaign evaluates, in index order."""
    space = search_space(params)
    if params.method == SearchMethod.GRID:
        return space.grid()
    if params.method == SearchMethod.RANDOM:
        assert params.trials is not None  # checked on entry
        return space.sample(params.trials, params.seed)
    raise ValueError("TPE trials are decided round by round (ktrdr.campaigns.tpe)")


def chunks(count: int, chunk_size: int) -> list[range]:
    """Index ranges of the chunks: consecutive, `chunk_size` each (the last may be short)."""
    return [range(i, min(i + chunk_size, count)) for i in range(0, count, chunk_size)]
