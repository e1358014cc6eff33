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
