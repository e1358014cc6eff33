"""KTRDR research engine: a pure library (no HTTP, no database, no global telemetry state).

Callers (the worker's job runners) pass progress and cancellation callbacks in; the engine
never reaches out.
"""
