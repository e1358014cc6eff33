"""Ports, prefixes and defaults shared by every process: one place to change them."""

API_PREFIX = "/api/v1"
DEFAULT_API_PORT = 8000
DEFAULT_WORKER_PORT = 5003
DEFAULT_API_URL = f"http://127.0.0.1:{DEFAULT_API_PORT}"

API_SERVICE_NAME = "ktrdr-api"
CLI_SERVICE_NAME = "ktrdr-cli"
WORKER_SERVICE_PREFIX = "ktrdr-worker"

# Liveness: workers heartbeat every HEARTBEAT_INTERVAL_S; the backend marks a worker lost
# after HEARTBEAT_TIMEOUT_S of silence (several missed beats, so one slow beat is not a loss).
DEFAULT_HEARTBEAT_INTERVAL_S = 2.0
DEFAULT_HEARTBEAT_TIMEOUT_S = 10.0
# A dispatched operation gets this long before a worker that says it is idle is believed.
DEFAULT_DISPATCH_GRACE_S = 5.0
DEFAULT_MAX_ATTEMPTS = 3

TOKEN_HEADER = "Authorization"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Uploaded files (CSV imports) up to this size; larger ones get a 413.
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024
# Where bars live under a data home (KTRDR_DATA_HOME), shared by the workers that write
# them and the backend that deletes them (one volume in deployment).
BARS_DIR = "data"
