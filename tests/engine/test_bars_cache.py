"""The worker's in-memory cache of decoded bar files: hits, invalidation, the byte bound."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandas.testing as pdt

from ktrdr.engine.data import DataStore
from ktrdr.engine.data.cache import BarsCache
from ktrdr.engine.data.synthetic import generate_synthetic_bars


def _bars(n: int, seed: int) -> pd.DataFrame:
    return generate_synthetic_bars("1h", n, seed=seed)


def test_a_second_load_is_served_from_memory_and_equals_the_file(tmp_path: Path) -> None:
    cache = BarsCache(64 * 2**20)
    cached, plain = DataStore(tmp_path, cache=cache), DataStore(tmp_path)
    cached.save("EURUSD", "1h", _bars(2_000, 1), source="synthetic")
    first = cached.load("EURUSD", "1h")
    second = cached.load("EURUSD", "1h", start=first.index[100], warmup_bars=10)
    assert (cache.misses, cache.hits) == (1, 1)
    pdt.assert_frame_equal(first, plain.load("EURUSD", "1h"))
    pdt.assert_frame_equal(
        second, plain.load("EURUSD", "1h", start=first.index[100], warmup_bars=10)
    )


def test_a_caller_changing_its_frame_does_not_change_the_cache(tmp_path: Path) -> None:
    store = DataStore(tmp_path, cache=BarsCache(64 * 2**20))
    store.save("EURUSD", "1h", _bars(500, 1), source="synthetic")
    got = store.load("EURUSD", "1h")
    expected = got.copy()
    got.loc[got.index[0], "close"] = -1.0
    got["close"] *= 2
    pdt.assert_frame_equal(store.load("EURUSD", "1h"), expected)


def test_a_save_replaces_what_the_cache_serves(tmp_path: Path) -> None:
    cache = BarsCache(64 * 2**20)
    store = DataStore(tmp_path, cache=cache)
    store.save("EURUSD", "1h", _bars(1_000, 1), source="synthetic")
    store.load("EURUSD", "1h")
    store.save("EURUSD", "1h", _bars(1_200, 2), source="synthetic")
    fresh = store.load("EURUSD", "1h")
    pdt.assert_frame_equal(fresh, DataStore(tmp_path).load("EURUSD", "1h"))
    assert len(fresh) == 1_200 and cache.misses == 2
    # The old version's entry went with it: one file, one entry.
    assert cache.size_bytes == int(fresh.memory_usage(index=True).sum())


def test_least_recently_used_files_leave_first_past_the_byte_bound(tmp_path: Path) -> None:
    one = int(_bars(1_000, 1).memory_usage(index=True).sum())
    cache = BarsCache(2 * one + one // 2)  # room for two of the three files
    store = DataStore(tmp_path, cache=cache)
    for symbol in ("AAA", "BBB", "CCC"):
        store.save(symbol, "1h", _bars(1_000, 1), source="synthetic")
    store.load("AAA", "1h")
    store.load("BBB", "1h")
    store.load("AAA", "1h")  # AAA is now the most recent
    store.load("CCC", "1h")  # evicts BBB
    assert cache.size_bytes <= cache.max_bytes
    hits = cache.hits
    store.load("AAA", "1h")
    store.load("CCC", "1h")
    assert cache.hits == hits + 2
    store.load("BBB", "1h")
    assert cache.hits == hits + 2  # BBB was read from the file again


def test_a_file_larger_than_the_bound_and_a_zero_bound_are_never_kept(tmp_path: Path) -> None:
    for bound in (0, 1_000):
        cache = BarsCache(bound)
        store = DataStore(tmp_path, cache=cache)
        store.save("EURUSD", "1h", _bars(1_000, 1), source="synthetic")
        store.load("EURUSD", "1h")
        store.load("EURUSD", "1h")
        assert (cache.hits, cache.size_bytes) == (0, 0)
