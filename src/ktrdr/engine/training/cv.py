"""Cross-validation that respects labels looking into the future (López de Prado,
Advances in Financial Machine Learning, ch. 4 and 7).

A label of row i looks at bars ``start[i] .. end[i]``. In a plain k-fold, a training row
whose label window overlaps the test fold has seen test prices: **purging** drops every
such row, and an **embargo** drops the rows just after each test fold too (features
built from the test period, e.g. a moving average, leak into them).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

IndexArray = npt.NDArray[np.int64]


def purged_kfold(
    start: npt.ArrayLike, end: npt.ArrayLike, n_splits: int, embargo: int = 0
) -> Iterator[tuple[IndexArray, IndexArray]]:
    """(train rows, test rows) for ``n_splits`` contiguous test folds in time order.

    ``start``/``end`` are each row's label window in bar positions (sorted by start).
    Training rows are those outside the fold whose window ends before the fold's first
    bar or starts after the fold's last labelled bar plus ``embargo`` bars.
    """
    s = np.asarray(start, dtype=np.int64)
    e = np.asarray(end, dtype=np.int64)
    n = len(s)
    if n_splits < 2 or n_splits > n:
        raise ValueError(f"n_splits must be between 2 and the number of rows ({n})")
    if embargo < 0:
        raise ValueError("embargo must be 0 or more bars")
    rows = np.arange(n)
    for fold in np.array_split(rows, n_splits):
        first_bar = s[fold[0]]
        last_bar = e[fold].max()
        before = e < first_bar
        after = s > last_bar + embargo
        train = rows[(before | after)]
        yield train, fold


def uniqueness_weights(start: npt.ArrayLike, end: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Average uniqueness of each label (ch. 4.4): at every bar of its window, 1 over the
    number of labels whose windows cover that bar, averaged over the window. Overlapping
    labels share information, so they weigh less; weights are scaled to mean 1."""
    s = np.asarray(start, dtype=np.int64)
    e = np.asarray(end, dtype=np.int64)
    if len(s) == 0:
        return np.empty(0)
    lo = int(s.min())
    span = int(e.max()) - lo + 2
    # Concurrency per bar: +1 where a window starts, -1 after it ends, summed up.
    delta = np.zeros(span)
    np.add.at(delta, s - lo, 1.0)
    np.add.at(delta, e - lo + 1, -1.0)
    concurrency = np.cumsum(delta)[:-1]
    inverse = np.r_[0.0, np.cumsum(1.0 / np.maximum(concurrency, 1.0))]
    total = inverse[e - lo + 1] - inverse[s - lo]
    weights = total / (e - s + 1)
    return weights / weights.mean()
