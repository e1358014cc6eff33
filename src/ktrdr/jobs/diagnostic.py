"""Parameters of the diagnostic operation (the platform's self-test)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ktrdr.bounds import LABEL_MAX, RequestModel


class DiagnosticParams(RequestModel):
    """Platform self-test: `steps` steps of `step_ms` milliseconds, reporting progress."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"steps": 10, "step_ms": 100, "label": "smoke test"}]}
    )

    steps: int = Field(10, ge=0, le=100_000, description="number of steps")
    step_ms: int = Field(100, ge=0, le=600_000, description="duration of one step, ms")
    fail_at_step: int | None = Field(
        None, ge=0, description="raise an error when this step is reached (tests failures)"
    )
    label: str | None = Field(None, max_length=LABEL_MAX, description="free text to recognise it")
