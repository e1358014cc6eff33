"""The backend HTTP API (`ktrdr-api`)."""
