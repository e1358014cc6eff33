"""Context variables that core code sets and telemetry reads (logs, span attributes)."""

from contextvars import ContextVar

# Set by core code while it works on one operation (request handler, worker job) so every
# log line written meanwhile carries the operation id without passing it around.
operation_id_var: ContextVar[str | None] = ContextVar("ktrdr_operation_id", default=None)


class CancelledByRequest(Exception):
    """Base of exceptions that mean "stopped because someone asked", not "failed".

    Spans record it as a ``cancelled`` event and keep an unset status, so a user's cancel
    never shows among the traces with errors. ``ktrdr.worker.job.JobCancelled`` is one.
    """
