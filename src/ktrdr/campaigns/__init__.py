"""Campaigns on the backend: sweeps and walk-forwards as parent operations whose work is
chunk children (see ARCHITECTURE.md "Campaigns" and docs/campaigns.md)."""
