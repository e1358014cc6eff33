"""Typed settings, one object per process, read from `KTRDR_*` environment variables."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ktrdr import constants
from ktrdr.credentials import ApiKeyEntry, parse_api_keys
from ktrdr.operations.model import OperationType

if TYPE_CHECKING:
    from ktrdr.artifacts import ArtifactStore

LOCAL = "local"
# Secrets that are written in public files (docs, examples, old compose defaults) or are
# someone's first guess: never accepted, in any environment.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "secret", "token", "password", "admin", "ktrdr", "postgres",
     "ktrdr-compose-dev-token"}
)  # fmt: skip
MIN_SECRET_LENGTH = 16  # outside local; token_urlsafe(32) gives 43
GENERATE_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def default_data_home() -> Path:
    return Path.home() / ".ktrdr"


def check_secret(
    variable: str, value: str | None, environment: str, *, placeholder_ok_locally: bool = False
) -> None:
    """One rule for every secret: real outside local development, never a placeholder."""
    tolerated = placeholder_ok_locally and environment == LOCAL
    if value is not None and value.lower() in PLACEHOLDER_SECRETS and not tolerated:
        raise ValueError(f"{variable} is a publicly known placeholder; {GENERATE_HINT}")
    if environment == LOCAL:
        return
    if not value:
        raise ValueError(
            f"{variable} must be set when KTRDR_ENVIRONMENT={environment!r}; {GENERATE_HINT}"
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{variable} is too short ({len(value)} characters, at least {MIN_SECRET_LENGTH} "
            f"outside local development); {GENERATE_HINT}"
        )


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")

    environment: str = Field("local", description="local | staging | production")
    api_token: str | None = Field(None, description="shared secret between API and workers")
    data_home: Path = Field(default_factory=default_data_home)
    log_level: str = "INFO"
    otlp_endpoint: str | None = Field(None, description="OTLP/HTTP base URL, e.g. Jaeger :4318")
    # Bars, models, checkpoints and result tables: the data home's directories (default) or
    # an object store every API replica and worker reaches (s3://bucket/prefix; endpoint and
    # credentials from the AWS_* variables). Remote reads go through a local cache.
    artifacts_url: str | None = Field(None, description="s3://bucket/prefix; unset: data home")
    artifacts_cache_dir: Path | None = Field(None, description="default: <data home>/cache")
    artifacts_cache_max_bytes: int = Field(10 * 2**30, ge=1, description="LRU eviction past it")

    # The API and workers share the worker token; the CLI never needs it (it sends a user
    # key, KTRDR_API_KEY, which is a different credential).
    needs_worker_token: ClassVar[bool] = True

    @model_validator(mode="after")
    def _artifacts_url_is_s3(self) -> CommonSettings:
        if self.artifacts_url and not self.artifacts_url.startswith("s3://"):
            raise ValueError(
                f"KTRDR_ARTIFACTS_URL {self.artifacts_url!r} is not an object store URL; use "
                "s3://bucket/prefix, or leave it unset for the data home's directories"
            )
        return self

    def artifact_store(self) -> ArtifactStore:
        """The store this process shares with the others (see ktrdr.artifacts)."""
        from ktrdr.artifacts import artifact_store

        return artifact_store(
            self.data_home,
            self.artifacts_url,
            cache_dir=self.artifacts_cache_dir,
            cache_max_bytes=self.artifacts_cache_max_bytes,
        )

    @model_validator(mode="after")
    def _token_required_outside_local(self) -> CommonSettings:
        # Open workers are a convenience for one machine, never for a deployment.
        if self.needs_worker_token:
            check_secret("KTRDR_API_TOKEN", self.api_token, self.environment)
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
    max_upload_bytes: int = Field(
        constants.DEFAULT_MAX_UPLOAD_BYTES,
        ge=1,
        description="largest file POST /data/uploads takes",
    )
    # How often the dispatcher and the liveness monitor look again without being woken.
    dispatch_poll_s: float = Field(0.5, gt=0)
    dispatch_timeout_s: float = Field(10.0, gt=0)
    jaeger_ui_url: str | None = None
    api_keys: str | None = Field(
        None, description="user API keys, NAME:SCOPES:sha256=HEX separated by commas or lines"
    )
    api_keys_file: Path | None = Field(None, description="a file of such entries, one a line")

    # Request limits (see ktrdr.api.limits and ktrdr.serve). 64 MiB holds a CSV import at
    # its 50 M-character limit, and a backtest report with ~200,000 trades.
    max_body_bytes: int = Field(64 * 2**20, ge=1024, description="413 past this")
    body_timeout_s: float = Field(120.0, gt=0, description="408 if a body takes longer")
    max_connections: int = Field(
        1000, ge=10, description="open connections + requests before uvicorn answers 503"
    )

    @model_validator(mode="after")
    def _secrets_real_outside_local(self) -> ApiSettings:
        keys = self.user_api_keys()  # a bad entry stops the start, with where it is
        if self.environment != LOCAL and not keys:
            raise ValueError(
                f"KTRDR_API_KEYS (or KTRDR_API_KEYS_FILE) must name at least one user API key "
                f"when KTRDR_ENVIRONMENT={self.environment!r}; `ktrdr keys new NAME` makes one"
            )
        # urllib, not SQLAlchemy's URL parser: workers share this module and must not load
        # the database stack (tests/test_boundaries.py).
        url = urlsplit(self.database_url or "")
        if url.scheme and not url.scheme.startswith("sqlite"):
            # A developer's own PostgreSQL often says postgres/postgres: fine locally.
            check_secret(
                "the password in KTRDR_DATABASE_URL",
                unquote(url.password) if url.password is not None else None,
                self.environment,
                placeholder_ok_locally=True,
            )
        return self

    def user_api_keys(self) -> list[ApiKeyEntry]:
        """Keys from KTRDR_API_KEYS and KTRDR_API_KEYS_FILE (names unique across both)."""
        text, sources = "", []
        if self.api_keys:
            text, sources = self.api_keys, ["KTRDR_API_KEYS"]
        if self.api_keys_file is not None:
            try:
                text += "\n" + self.api_keys_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"KTRDR_API_KEYS_FILE {self.api_keys_file}: {exc}") from exc
            sources.append(f"KTRDR_API_KEYS_FILE {self.api_keys_file}")
        return parse_api_keys(text, " + ".join(sources)) if sources else []

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
    # The URL the API dispatches to and Prometheus scrapes (through /api/v1/sd/workers):
    # set it when the worker is reached by another address than it binds (another host,
    # NAT, a Kubernetes Service or pod IP). KTRDR_WORKER_URL is its older name.
    worker_advertise_url: str | None = Field(
        None, description="URL the API and Prometheus use to reach this worker"
    )
    worker_url: str | None = Field(None, description="older name of worker_advertise_url")
    worker_host: str | None = Field(None, description="host name advertised in the URL")
    heartbeat_interval_s: float = Field(constants.DEFAULT_HEARTBEAT_INTERVAL_S, gt=0)
    shutdown_grace_s: float = Field(10.0, ge=0, description="time a job gets to end on SIGTERM")
    backtest_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="symbols of a universe or portfolio, or combinations of a sweep chunk, "
        "run at once (the kernels release the GIL)",
    )
    bars_cache_mb: int = Field(
        512, ge=0, le=1_048_576, description="decoded bar files kept in memory; 0: none"
    )

    def advertised_host(self) -> str:
        if self.worker_host:
            return self.worker_host
        if self.host in {"0.0.0.0", "::"}:
            # Bound to every interface (containers): the host name is what peers resolve.
            return socket.gethostname()
        return self.host

    @model_validator(mode="after")
    def _advertise_url_is_http(self) -> WorkerSettings:
        url = self.worker_advertise_url or self.worker_url
        parts = urlsplit(url or "")
        if url is not None and (parts.scheme not in {"http", "https"} or not parts.hostname):
            raise ValueError(
                f"KTRDR_WORKER_ADVERTISE_URL {url!r} is not a URL the API can reach; use "
                "http://HOST:PORT (the address other machines reach this worker by)"
            )
        return self

    def resolved_worker_url(self) -> str:
        url = self.worker_advertise_url or self.worker_url
        return url.rstrip("/") if url else f"http://{self.advertised_host()}:{self.port}"

    def resolved_worker_id(self) -> str:
        # Stable across restarts: the same worker keeps its identity, its registry entry
        # and its telemetry series (random ids made ghosts in the original system).
        return self.worker_id or f"{self.advertised_host()}-{self.port}"


class CliSettings(CommonSettings):
    needs_worker_token: ClassVar[bool] = False
    api_url: str = constants.DEFAULT_API_URL
    jaeger_ui_url: str | None = None
