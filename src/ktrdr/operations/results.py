"""Operation results whose large parts are artifacts: resolve them for the API.

A result may carry ``artifacts: {part: {key, sha256, size_bytes, rows, [preview_points]}}``
(written by the worker before it reported, or by the campaign driver as it finished).
``GET /results`` shows each such part inline as it always did (thinned to
``preview_points`` where the worker asked for a preview, its first ``preview_rows`` for a
ranked table);
``GET /results/{part}`` streams the whole table as JSON, CSV or Parquet.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ktrdr.artifacts import ArtifactRef, ArtifactStore
from ktrdr.artifacts.tables import read_table, records, thin_positions

ARTIFACTS_KEY = "artifacts"
# Short route names for parts: /results/equity is the equity_curve part.
PART_ALIASES = {"equity": "equity_curve"}
# A training run's fitted per-epoch history (written by ktrdr.worker.runners.training).
HISTORY = "history"


class NoSuchPart(LookupError):
    """The result has no such part; the message lists the parts it has."""


def artifact_parts(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parts = result.get(ARTIFACTS_KEY)
    return parts if isinstance(parts, dict) else {}


def part_names(result: dict[str, Any]) -> list[str]:
    return sorted(set(result) | set(artifact_parts(result)))


def part_table(result: dict[str, Any], name: str, store: ArtifactStore) -> pa.Table:
    """The whole table of an artifact part (``equity`` means ``equity_curve``)."""
    parts = artifact_parts(result)
    entry = parts.get(PART_ALIASES.get(name, name))
    if entry is None:
        tables = ", ".join(sorted(parts)) or "none"
        raise NoSuchPart(f"result has no table {name!r}; tables: {tables}")
    return read_table(store, ArtifactRef.from_dict(entry))


def history_rows(result: dict[str, Any], store: ArtifactStore) -> list[dict[str, Any]] | None:
    """A training result's per-epoch history (JSON form); None for a result stored before
    the history was an artifact."""
    entry = artifact_parts(result).get(HISTORY)
    return None if entry is None else records(read_table(store, ArtifactRef.from_dict(entry)))


def _inline(entry: dict[str, Any], store: ArtifactStore) -> list[dict[str, Any]]:
    table = read_table(store, ArtifactRef.from_dict(entry))
    preview = entry.get("preview_points")
    if isinstance(preview, int):
        table = table.take(pa.array(thin_positions(table.num_rows, preview)))
    head = entry.get("preview_rows")  # a ranked table: its best rows, not a thinned curve
    if isinstance(head, int):
        table = table.slice(0, head)
    return records(table)


def result_part(result: dict[str, Any], part: str, store: ArtifactStore) -> Any:
    """One top-level part, artifacts resolved inline."""
    parts = artifact_parts(result)
    if part in parts:
        return _inline(parts[part], store)
    if part not in result:
        raise NoSuchPart(f"result has no part {part!r}; parts: {', '.join(part_names(result))}")
    return result[part]


def full_result(result: dict[str, Any], store: ArtifactStore) -> dict[str, Any]:
    """The result with every artifact part inline (``artifacts`` kept: keys, checksums)."""
    return {**result, **{part: _inline(e, store) for part, e in artifact_parts(result).items()}}
