"""PromQL shapes shared by every dashboard (one copy of each rule)."""

from __future__ import annotations


def count_in_window(selector: str, by: str = "") -> str:
    """How many events a counter saw over the dashboard's window, as a whole number.

    ``increase()`` extrapolates from the first and last samples in the window to its
    edges, so at any moment that is not a scrape instant one event reads as 1.04 or 0.97
    (a 1 s scrape gap over a 26 s span of samples). The counters count whole events, so
    the panel rounds: exact as long as the extrapolation stays under half an event, which
    for a 1 h window and 15 s scrapes holds up to about 120 events per series; larger
    counts stay within the same 0.4 %.
    """
    group = f"sum by ({by}) " if by else "sum "
    return f"round({group}(increase({selector}[$__range])))"


def quantile(q: float, buckets: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram over Grafana's rate window, per ``by`` labels.

    ``buckets`` is a selector of the ``_bucket`` series. Summing the rates first merges
    every worker's (and every label value's not in ``by``) observations into one
    distribution, which is what ``histogram_quantile`` needs ``le`` kept for.
    """
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({buckets}[$__rate_interval])))"
