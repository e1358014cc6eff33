"""Typed settings, one object per process, read from `KTRDR_*` environment variables."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ktrdr import constants
from ktrdr.operations.model import OperationType


def default_data_home() -> Path:
    return Path.home() / ".ktrdr"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")

    environment: str = Field("local", description="local | staging | production")
    api_token: str | None = Field(None, description="shared secret between API and workers")
    data_home: Path = Field(default_factory=default_data_home)
    log_level: str = "INFO"
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP base URL, e.g. Jaeger :4318")

    @model_validator(mode="after")
    def _token_required_outside_local(self) -> CommonSettings:
        # Open workers are a convenience for one machine, never for a deployment.
        if self.environment != "local" and not self.api_token:
            raise ValueError(
                f"KTRDR_API_TOKEN must be set when KTRDR_ENVIRONMENT={self.environment!r}"
            )
        if self.api_token in {"changeme", "secret", "token"}:
            raise ValueError("KTRDR_API_TOKEN is a placeholder; set a real secret")
        return self


class ApiSettings(CommonSettings):
    host: str = "127.0.0.1"
    port: int = Field(constants.DEFAULT_API_PORT, ge=1, le=65535)
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file under data_home"
    )
    heartbeat_timeout_s: float = Field(constants.DEFAULT_HEARTBEAT_TIMEOUT_S, gt=0)
    dispatch_grace_s: float = Field(constants.DEFAULT_DISPATCH_GRACE_S, ge=0)
    max_attempts: int = Field(constants.DEFAULT_MAX_ATTEMPTS, ge=1, le=100)
    # How often the dispatcher and the liveness monitor look again without being woken.
    dispatch_poll_s: float = Field(0.5, gt=0)
    dispatch_timeout_s: float = Field(10.0, gt=0)
    jaeger_ui_url: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_home / 'ktrdr.db'}"


class WorkerSettings(CommonSettings):
    host: str = "127.0.0.1"
    port: int = Field(constants.DEFAULT_WORKER_PORT, ge=1, le=65535)
    kinds: list[OperationType] = Field(
        default_factory=list, description="job kinds to take; empty: every kind it can run"
    )
    api_url: str = constants.DEFAULT_API_URL
    worker_id: str | None = Field(None, description="stable id; default host-port")
    worker_url: str | None = Field(None, description="URL the API uses to reach this worker")
    worker_host: str | None = Field(None, description="host name advertised in the URL")
    heartbeat_interval_s: float = Field(constants.DEFAULT_HEARTBEAT_INTERVAL_S, gt=0)
    shutdown_grace_s: float = Field(10.0, ge=0, description="time a job gets to end on SIGTERM")

    def advertised_host(self) -> str:
        if self.worker_host:
            return self.worker_host
        if self.host in {"0.0.0.0", "::"}:
            # Bound to every interface (containers): the host name is what peers resolve.
            return socket.gethostname()
        return self.host

    def resolved_worker_url(self) -> str:
        return self.worker_url or f"http://{self.advertised_host()}:{self.port}"

    def resolved_worker_id(self) -> str:
        # Stable across restarts: the same worker keeps its identity, its registry entry
        # and its telemetry series (random ids made ghosts in the original system).
        return self.worker_id or f"{self.advertised_host()}-{self.port}"


class CliSettings(CommonSettings):
    api_url: str = constants.DEFAULT_API_URL
    jaeger_ui_url: str | None = None
