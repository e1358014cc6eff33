"""Where shared files live in the artifact store: one definition for the API and workers."""

from __future__ import annotations

# Key prefixes (the data home's folders for the same files are data/, models/, checkpoints/).
BARS, MODELS, CHECKPOINTS = "bars", "models", "checkpoints"


def bars_key(symbol: str, timeframe: str) -> str:
    """The bars of a (normalised) symbol and a (checked) timeframe."""
    return f"{BARS}/{symbol}/{timeframe}.parquet"
