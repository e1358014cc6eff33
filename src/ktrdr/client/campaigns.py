"""Sweep and walk-forward results as pandas objects.

`results` is one row per evaluated parameter set, in the API's order (its sweep-results
route: best first by the campaign's objective): the parameters (dotted strategy paths) and
then the statistics as columns, indexed by the result's key ("17", or "w2/17" and
"w2/oos" inside walk-forward window 2)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ktrdr.client.models import Operation

# What each row says about itself, before its parameters and statistics.
ROW_COLUMNS = ("combination", "stage", "window")
HTML_TOP_ROWS = 10


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The API's result rows as a DataFrame of parameters → statistics."""
    records = []
    for row in rows:
        clash = set(row["params"]) & set(row["statistics"])
        if clash:  # a parameter path never looks like a statistic's name; say so if it did
            raise ValueError(f"parameter and statistic share the name(s) {sorted(clash)}")
        records.append(
            {**{c: row.get(c) for c in ROW_COLUMNS}, **row["params"], **row["statistics"]}
        )
    index = pd.Index([row["key"] for row in rows], name="key", dtype="object")
    return pd.DataFrame.from_records(records, index=index)


@dataclass
class CampaignResult:
    """A sweep or walk-forward: its operation (the summary is `operation.result`) and every
    evaluated parameter set."""

    operation: Operation
    rows: list[dict[str, Any]] = field(repr=False)

    @property
    def id(self) -> str:
        return self.operation.id

    @property
    def summary(self) -> dict[str, Any]:
        return self.operation.result or {}

    @property
    def results(self) -> pd.DataFrame:
        return results_frame(self.rows)

    @property
    def param_names(self) -> list[str]:
        return sorted({name for row in self.rows for name in row["params"]})

    def _repr_html_(self) -> str:
        top = self.results.head(HTML_TOP_ROWS)
        title = html.escape(
            f"{self.operation.type} {self.id}: {len(self.rows)} results, "
            f"objective {self.summary.get('objective', '?')}"
        )
        return f"<div><b>{title}</b>{top.to_html(max_cols=20)}</div>"


@dataclass
class SweepResult(CampaignResult):
    """A completed sweep; `best` is the API's best parameter set (None if none qualified)."""

    @property
    def best(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = self.summary.get("best")
        return best


@dataclass
class WalkforwardResult(CampaignResult):
    """A completed walk-forward: `results` has every stage (in_sample, out_of_sample);
    `windows` one row per window (chosen parameters, in- and out-of-sample statistics)."""

    @property
    def windows(self) -> pd.DataFrame:
        rows = self.summary.get("windows") or []
        if not rows:
            return pd.DataFrame(index=pd.Index([], name="window"))
        # Parameter paths contain dots: keep them whole under a `params.` prefix.
        flat = [
            {
                **{k: v for k, v in w.items() if not isinstance(v, dict)},
                **{f"params.{k}": v for k, v in (w.get("params") or {}).items()},
                **{f"in_sample.{k}": v for k, v in (w.get("in_sample") or {}).items()},
                **{f"out_of_sample.{k}": v for k, v in (w.get("out_of_sample") or {}).items()},
            }
            for w in rows
        ]
        return pd.DataFrame.from_records(flat).set_index("window")

    @property
    def stitched_equity(self) -> pd.DataFrame:
        """The out-of-sample equity of every window, stitched (thinned by the worker to a
        few thousand points), indexed by UTC time."""
        points = self.summary.get("stitched_equity") or []  # [[iso time, equity], ...]
        index = pd.DatetimeIndex(
            pd.to_datetime([p[0] for p in points], utc=True), name="timestamp"
        ).as_unit("ns")
        equity = [float("nan") if p[1] is None else float(p[1]) for p in points]
        return pd.DataFrame({"equity": pd.Series(equity, index=index, dtype="float64")})
