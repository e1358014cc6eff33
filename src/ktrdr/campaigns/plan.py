"""What a grid or random campaign evaluates, decided from its parameters alone (so the
backend plans again after a restart and gets the same answer), and how it is chunked."""

from __future__ import annotations

import math
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
    """The indices of each chunk, at most ``chunk_size`` each: dealt out in turn (chunk j of
    n takes j, j + n, j + 2n, ...), not cut into consecutive runs. Neighbouring
    combinations cost alike (a short fast SMA trades more, and a grid keeps its values
    together), so consecutive runs gave one worker the slow half of a 2-worker sweep;
    dealt out, every chunk holds a sample of the whole and they end together. Sizes differ
    by one at most, the first the largest."""
    n = math.ceil(count / chunk_size) if count else 0
    return [range(j, count, n) for j in range(n)]
