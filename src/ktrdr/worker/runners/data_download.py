"""The data-download job: fetch (or generate / parse) bars, validate, store."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ktrdr.artifacts import artifact_store
from ktrdr.engine.data import SYNTHETIC_SOURCE, YahooProvider, generate_synthetic_bars
from ktrdr.engine.data.calendars import market_of
from ktrdr.engine.data.csv_import import CSV_SOURCE
from ktrdr.engine.data.yahoo import YAHOO_SOURCE
from ktrdr.jobs.data_download import DataDownloadParams, Provider
from ktrdr.worker.job import JobContext
from ktrdr.worker.runners.stores import bars_for, publish_bars

PHASES = ("fetch", "store")


def _fetch(params: DataDownloadParams, ctx: JobContext) -> tuple[pd.DataFrame, str]:
    timeframe = params.resolved_timeframe()
    if params.provider == Provider.SYNTHETIC:
        bars = generate_synthetic_bars(
            timeframe, params.bars, seed=params.seed, start=params.synthetic_start(),
            market=market_of(params.symbol),
        )  # fmt: skip
        return bars, SYNTHETIC_SOURCE
    if params.provider == Provider.CSV:
        assert params.upload_key and params.upload_sha256  # checked by the params model
        # The same store the backend checked the upload in (a shared data home / volume);
        # the checksum proves it is the file that was checked.
        store = ctx.artifacts or artifact_store(ctx.data_home)
        data = store.get(params.upload_key, params.upload_sha256)
        return params.read_csv(data), CSV_SOURCE
    assert params.start and params.end  # checked by the params model

    def progress(fraction: float, _phase: str, message: str) -> None:
        ctx.check_cancelled()
        ctx.progress(5 + 80 * fraction, message=message)

    bars = YahooProvider().download(
        params.symbol, timeframe, params.start, params.end, progress=progress
    )
    return bars, YAHOO_SOURCE


def run_data_download(ctx: JobContext) -> dict[str, Any]:
    params = DataDownloadParams.model_validate(ctx.params)
    timeframe = params.resolved_timeframe()
    with ctx.phase("fetch", span_prefix="data_download") as span:
        ctx.progress(2, message=f"{params.provider.value}: {params.symbol} {timeframe}")
        bars, source = _fetch(params, ctx)
        span.set_attribute("data.symbol", params.symbol)
        span.set_attribute("data.timeframe", timeframe)
        span.set_attribute("data.provider", params.provider.value)
        span.set_attribute("data.rows", len(bars))
    ctx.check_cancelled()
    with ctx.phase("store", span_prefix="data_download"):
        ctx.progress(90, message=f"storing {len(bars)} bars", items_done=len(bars))
        # A merge starts from the shared store's current bars, whoever wrote them.
        store = bars_for(ctx, params.symbol, timeframe)
        store.save(params.symbol, timeframe, bars, source=source, merge=params.merge)
        stored = publish_bars(ctx, params.symbol, timeframe)
        info = store.info(params.symbol, timeframe)
        # Against the market's calendar: a closed market is not a gap.
        gaps = store.gaps(params.symbol, timeframe, market_of(params.symbol))
    ctx.metrics.rows_downloaded(len(bars), params.provider.value)
    dataset: dict[str, Any] = {**info.to_dict(), "market": market_of(params.symbol)}
    if stored is not None:
        # In the object store: the catalog (GET /data) names the object and its checksum.
        dataset["artifact"] = stored.to_dict()
    return {
        "dataset": dataset,
        "rows_written": len(bars),
        "gaps": len(gaps),
        "notes": bars.attrs.get("notes", []),  # e.g. which close column a CSV gave
        "metrics": {"rows_written": len(bars), "rows_stored": info.rows, "gaps": len(gaps)},
    }
