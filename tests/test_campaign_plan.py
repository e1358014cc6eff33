"""How a campaign's combinations are cut into chunks (ktrdr.campaigns.plan.chunks)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from ktrdr.campaigns.plan import chunks


@given(count=st.integers(0, 5000), size=st.integers(1, 600))
def test_every_combination_is_in_exactly_one_chunk_of_at_most_the_size(
    count: int, size: int
) -> None:
    parts = chunks(count, size)
    assert sorted(i for part in parts for i in part) == list(range(count))
    assert len(parts) == math.ceil(count / size)
    lengths = [len(part) for part in parts]
    assert all(1 <= n <= size for n in lengths)
    # Even sizes, the first the largest: the size read back from the first chunk after a
    # backend restart plans the same chunks again.
    assert not lengths or (max(lengths) - min(lengths) <= 1 and lengths[0] == max(lengths))
    assert chunks(count, max(lengths, default=size)) == parts


def test_chunks_are_dealt_out_so_a_cost_rising_along_the_grid_is_shared() -> None:
    parts = chunks(100, 50)
    assert parts == [range(0, 100, 2), range(1, 100, 2)]
    # Cost rising with the index (a grid's short fast SMAs first trade the most): the two
    # workers' shares differ by 1 % of the whole, not the 50 % consecutive halves gave.
    cost = [sum(100 - i for i in part) for part in parts]
    assert abs(cost[0] - cost[1]) / sum(cost) < 0.01
    assert chunks(7, 3) == [range(0, 7, 3), range(1, 7, 3), range(2, 7, 3)]


GRID = [{"fast": f, "slow": s} for f in range(5, 55, 5) for s in range(60, 260, 20)]


def test_a_grids_innermost_values_are_dealt_in_snake_order() -> None:
    """The benchmark's 10 x 10 grid on two workers: each chunk takes five slow periods,
    as many short as long, with every fast one; dealt in turn, the first took every other
    one from the shortest (60, 100, ..) and ran 7 % longer than the second."""
    parts = chunks(len(GRID), 50, GRID)
    slow = [sorted({GRID[i]["slow"] for i in part}) for part in parts]
    assert slow == [[60, 120, 140, 200, 220], [80, 100, 160, 180, 240]]
    assert all(len({GRID[i]["fast"] for i in part}) == 10 for part in parts)
    assert [len(part) for part in parts] == [50, 50]

    # Trades fall roughly as 1 / period: the two shares of it differ by 8 %, dealt in
    # turn by 21 %.
    def share(part: list[int] | range) -> float:
        return sum(1 / GRID[i]["slow"] for i in part)

    snake = share(parts[0]) / share(parts[1])
    turns = share(range(0, 100, 2)) / share(range(1, 100, 2))
    assert abs(snake - 1) < 0.1 < 0.2 < abs(turns - 1)
    # Categorical values keep their order of appearance; numbers are sorted first.
    names = [{"mode": m, "x": x} for x in (1, 2) for m in ("c", "a", "b", "d")]
    assert [sorted({names[i]["mode"] for i in part}) for part in chunks(8, 4, names)] == [
        ["c", "d"], ["a", "b"],
    ]  # fmt: skip


def test_values_that_do_not_share_out_evenly_are_dealt_in_turn() -> None:
    # 10 slow periods for 3 chunks would give 40, 30 and 30 combinations.
    assert chunks(len(GRID), 34, GRID) == [range(j, 100, 3) for j in range(3)]
    # No value repeats (a random sweep's continuous parameter): nothing to group.
    unique = [{"x": 0.5 + i} for i in range(10)]
    assert chunks(10, 5, unique) == [range(0, 10, 2), range(1, 10, 2)]
    assert chunks(len(GRID), 100, GRID) == [range(0, 100)]


@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    size=st.integers(1, 200),
    drop=st.integers(0, 7),
)
def test_chunks_of_grids_are_a_partition_of_even_sizes_planned_again_alike(
    sizes: list[int], size: int, drop: int
) -> None:
    import itertools

    grid = [
        dict(zip("abc", values, strict=False))
        for values in itertools.product(*(range(10, 10 + k) for k in sizes))
    ]
    if drop:  # a constraint between parameters removes some combinations
        grid = [p for p in grid if sum(p.values()) % 8 != drop] or grid
    parts = chunks(len(grid), size, grid)
    assert sorted(i for part in parts for i in part) == list(range(len(grid)))
    assert len(parts) == math.ceil(len(grid) / size)
    lengths = [len(part) for part in parts]
    assert max(lengths) - min(lengths) <= 1 and lengths[0] == max(lengths) <= size
    assert all(list(part) == sorted(part) for part in parts)
    assert [list(p) for p in chunks(len(grid), lengths[0], grid)] == [list(p) for p in parts]


def test_checked_search_spaces_are_kept_only_while_small() -> None:
    """The backend keeps a checked space by its strategy text (submission, planning and
    each chunk check it), but not one whose grid would hold many combinations, nor an
    error: a wrong space is refused again every time."""
    import pytest

    from ktrdr.engine.errors import StrategyError
    from ktrdr.engine.strategy import builtin_strategy_text
    from ktrdr.jobs import campaigns

    base = builtin_strategy_text("sma_crossover") + "search:\n  parameters:\n"
    small = base + "    indicators.sma_fast.params.period: {range: [2, 20, 2]}\n"
    large = (
        base + "    indicators.sma_fast.params.period: {range: [2, 201, 1]}\n"
        "    indicators.sma_slow.params.period: {range: [210, 310, 1]}\n"
    )
    wrong = base + "    indicators.sma_fsat.params.period: {range: [2, 20, 2]}\n"
    campaigns._SPACES.clear()
    assert campaigns._space_of(small) is campaigns._space_of(small)
    assert campaigns._space_of(large).raw_size == 200 * 101
    assert campaigns._space_of(large) is not campaigns._space_of(large)
    for _ in range(2):
        with pytest.raises(StrategyError, match="sma_fsat"):
            campaigns._space_of(wrong)
    assert list(campaigns._SPACES) == [small]
    for n in range(campaigns._SPACES_KEPT + 3):
        campaigns._space_of(small.replace("[2, 20, 2]", f"[2, {30 + n}, 2]"))
    assert len(campaigns._SPACES) == campaigns._SPACES_KEPT and small not in campaigns._SPACES
