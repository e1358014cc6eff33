"""What a grid or random campaign evaluates, decided from its parameters alone (so the
backend plans again after a restart and gets the same answer), and how it is chunked."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
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


def chunks(
    count: int, chunk_size: int, param_sets: Sequence[Mapping[str, Any]] | None = None
) -> list[Sequence[int]]:
    """The indices of each chunk, at most ``chunk_size`` each, never consecutive runs:
    neighbouring combinations cost alike (a short SMA trades more, and a grid keeps its
    values together), so consecutive runs gave one worker the slow half of a 2-worker
    sweep. Sizes differ by one at most, the first the largest (a backend restart reads the
    size back from the first chunk and plans the same chunks again).

    Given the combinations (``param_sets``, in index order), the values of the one that
    varies fastest (a grid's innermost parameter) are dealt out in snake order, 0, 1, ..,
    n - 1, n - 1, .., 0, ascending when they are numbers, and each chunk takes every
    combination with its values: every chunk gets as many low values as high ones, and
    computes that parameter's indicators for its own values only. Dealt out in turn (chunk
    j of n takes j, j + n, j + 2n, ...), as without ``param_sets`` and where the values do
    not share out evenly, the first chunk of a 10 x 10 SMA grid took every other slow
    period from the shortest on and ran 7 % longer than the second."""
    n = math.ceil(count / chunk_size) if count else 0
    if param_sets is not None and n > 1:
        by_value = _by_inner_value(param_sets, n)
        if by_value is not None:
            return by_value
    return [range(j, count, n) for j in range(n)]


def _by_inner_value(param_sets: Sequence[Mapping[str, Any]], n: int) -> list[Sequence[int]] | None:
    """Chunks by the snake-dealt values of the fastest-varying parameter, or None where
    that would not give sizes as even as dealing in turn."""
    changes: dict[str, int] = {}
    for before, after in itertools.pairwise(param_sets):
        for path, value in after.items():
            changes[path] = changes.get(path, 0) + (before.get(path) != value)
    if not changes:
        return None
    inner = max(changes, key=lambda path: changes[path])  # the first of equals: stable
    values = list(dict.fromkeys(p.get(inner) for p in param_sets))
    if len(values) < n or len(values) == len(param_sets):
        return None  # too few to deal, or none repeats (a random sweep's continuous values)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        values.sort()
    turn = {v: _snake(rank, n) for rank, v in enumerate(values)}
    parts: list[list[int]] = [[] for _ in range(n)]
    for i, p in enumerate(param_sets):
        parts[turn[p.get(inner)]].append(i)
    lengths = [len(part) for part in parts]
    if max(lengths) - min(lengths) > 1 or lengths[0] != max(lengths):
        return None
    return list(parts)


def _snake(rank: int, n: int) -> int:
    """The chunk of the value of this rank, dealt 0, 1, .., n - 1, n - 1, .., 0, 0, 1, .."""
    phase = rank % (2 * n)
    return phase if phase < n else 2 * n - 1 - phase
