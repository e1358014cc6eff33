"""Issue 17.1: no publicly known or missing secret outside local development (settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ktrdr.config import ApiSettings, CliSettings, WorkerSettings
from ktrdr.credentials import ApiKeyEntry, Scope, hash_secret, new_secret, parse_api_keys

TOKEN = new_secret()
KEY_LINE = ApiKeyEntry("ci", frozenset({Scope.READ}), hash_secret("k" * 43)).line()
STAGING = {"environment": "staging", "api_token": TOKEN, "api_keys": KEY_LINE}


@pytest.fixture(autouse=True)
def _no_ktrdr_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KTRDR_API_TOKEN", "KTRDR_API_KEYS", "KTRDR_API_KEYS_FILE", "KTRDR_ENVIRONMENT",
                 "KTRDR_DATABASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


def refusal(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        ApiSettings.model_validate(values)
    return str(info.value)


def test_staging_without_token_names_the_variable_and_how_to_make_one() -> None:
    message = refusal(environment="staging", api_keys=KEY_LINE)
    assert "KTRDR_API_TOKEN must be set when KTRDR_ENVIRONMENT='staging'" in message
    assert "secrets.token_urlsafe(32)" in message
    with pytest.raises(ValidationError, match="KTRDR_API_TOKEN must be set"):
        WorkerSettings.model_validate({"environment": "production"})


@pytest.mark.parametrize("token", ["ktrdr-compose-dev-token", "changeme", "Secret"])
def test_placeholder_tokens_are_refused_everywhere(token: str) -> None:
    assert "publicly known placeholder" in refusal(**{**STAGING, "api_token": token})
    assert "publicly known placeholder" in refusal(environment="local", api_token=token)


def test_short_token_is_refused_outside_local_only() -> None:
    assert "too short (8 characters, at least 16" in refusal(**{**STAGING, "api_token": "abcdefgh"})
    assert ApiSettings.model_validate({"api_token": "abcdefgh"}).api_token == "abcdefgh"


def test_staging_needs_user_api_keys() -> None:
    message = refusal(environment="staging", api_token=TOKEN)
    assert "KTRDR_API_KEYS (or KTRDR_API_KEYS_FILE) must name at least one user API key" in message
    assert [k.name for k in ApiSettings.model_validate(STAGING).user_api_keys()] == ["ci"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql+psycopg://ktrdr@db:5432/ktrdr", "must be set"),
        ("postgresql+psycopg://ktrdr:ktrdr@db:5432/ktrdr", "is a publicly known placeholder"),
        ("postgresql+psycopg://ktrdr:short@db:5432/ktrdr", "is too short"),
    ],
)
def test_staging_database_password_must_be_real(url: str, problem: str) -> None:
    message = refusal(**STAGING, database_url=url)
    assert f"the password in KTRDR_DATABASE_URL {problem}" in message
    # Locally, a developer's postgres/postgres is fine.
    assert ApiSettings.model_validate({"database_url": url}).database_url == url


def test_real_staging_configuration_starts() -> None:
    password = new_secret()
    url = f"postgresql+psycopg://ktrdr:{password}@db:5432/ktrdr"
    assert ApiSettings.model_validate({**STAGING, "database_url": url}).database_url == url


def test_cli_never_needs_the_worker_token() -> None:
    assert CliSettings.model_validate({"environment": "production"}).api_token is None


def test_key_entries_must_be_hashes_and_plain_keys_are_not_echoed(tmp_path: Path) -> None:
    plain = "ci:read:" + new_secret()
    with pytest.raises(ValueError, match="must be stored as sha256=") as info:
        parse_api_keys(plain, "KTRDR_API_KEYS")
    assert plain.rsplit(":", 1)[1] not in str(info.value)
    with pytest.raises(ValueError, match=r"unknown scope\(s\) \['admin'\]"):
        parse_api_keys(KEY_LINE.replace(":read:", ":admin:"), "KTRDR_API_KEYS")
    with pytest.raises(ValueError, match="used twice"):
        parse_api_keys(f"{KEY_LINE}\n{KEY_LINE}", "KTRDR_API_KEYS")
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# comment\n\n{KEY_LINE}  # the CI job\n")
    other = ApiKeyEntry("ops", frozenset(Scope), hash_secret("o" * 43)).line()
    settings = ApiSettings.model_validate({"api_keys": other, "api_keys_file": keys_file})
    keys = {k.name: k for k in settings.user_api_keys()}
    assert keys["ci"].scopes == {Scope.READ} and keys["ops"].scopes == {Scope.READ, Scope.OPERATE}
    assert keys["ci"].key_hash == hash_secret("k" * 43)
    missing = refusal(api_keys_file=tmp_path / "absent")
    assert f"KTRDR_API_KEYS_FILE {tmp_path / 'absent'}" in missing
