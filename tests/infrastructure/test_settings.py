"""Settings: each database URL form becomes the store environment that eventsourcing reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from creditledger.infrastructure.settings import DEFAULT_DATABASE_URL, Settings, store_env


@pytest.fixture(autouse=True)
def no_ambient_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test sees only the configuration it sets, and relative paths land in a temp dir."""
    monkeypatch.delenv("CREDITLEDGER_DATABASE_URL", raising=False)
    monkeypatch.delenv("CREDITLEDGER_MAX_ATTEMPTS", raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_memory_url_selects_the_in_memory_store() -> None:
    assert store_env(Settings(database_url="memory://")) == {
        "PERSISTENCE_MODULE": "eventsourcing.popo"
    }


def test_a_relative_sqlite_url_names_a_file_below_the_working_directory(tmp_path: Path) -> None:
    env = store_env(Settings(database_url="sqlite:///data/ledger.sqlite"))

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == "data/ledger.sqlite"
    assert (tmp_path / "data").is_dir()


def test_an_absolute_sqlite_url_has_four_slashes(tmp_path: Path) -> None:
    path = tmp_path / "abs" / "ledger.sqlite"

    env = store_env(Settings(database_url=f"sqlite:///{path}"))

    assert str(path).startswith("/")
    assert env["SQLITE_DBNAME"] == str(path)
    assert path.parent.is_dir()


def test_a_sqlite_path_may_be_percent_encoded() -> None:
    env = store_env(Settings(database_url="sqlite:///my%20ledgers/a.sqlite"))

    assert env["SQLITE_DBNAME"] == "my ledgers/a.sqlite"


def test_the_sqlite_lock_timeout_is_passed_on() -> None:
    env = store_env(Settings(database_url="sqlite:///a.sqlite", sqlite_lock_timeout=9))

    assert env["SQLITE_LOCK_TIMEOUT"] == "9"


def test_a_full_postgresql_url_gives_every_connection_setting() -> None:
    settings = Settings(
        database_url="postgresql://ledger:s%40cret@db.internal:6543/credits?schema=tenant_a",
        pool_size=7,
        max_overflow=3,
        pool_timeout=11,
        lock_timeout=2,
    )

    assert store_env(settings) == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "credits",
        "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "ledger",
        "POSTGRES_PASSWORD": "s@cret",
        "POSTGRES_SCHEMA": "tenant_a",
        "POSTGRES_POOL_SIZE": "7",
        "POSTGRES_MAX_OVERFLOW": "3",
        "POSTGRES_CONNECT_TIMEOUT": "11",
        "POSTGRES_LOCK_TIMEOUT": "2",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": (
            "creditledger.infrastructure.persistence.postgres:AppendFunctionRecorder"
        ),
    }


def test_a_minimal_postgres_url_falls_back_to_the_defaults() -> None:
    env = store_env(Settings(database_url="postgres://db.internal"))

    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "5432")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]) == ("postgres", "")
    assert (env["POSTGRES_DBNAME"], env["POSTGRES_SCHEMA"]) == ("postgres", "public")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@h/db",
        "postgresql://u@h/db?schema=x&POSTGRES_ENABLE_DB_FUNCTIONS=y",
        "postgres://u@h/db",
    ],
)
def test_postgres_database_functions_are_always_off(url: str) -> None:
    assert store_env(Settings(database_url=url))["POSTGRES_ENABLE_DB_FUNCTIONS"] == "n"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mysql://u@h/db",
        "sqlite:/relative.sqlite",
        "sqlite://relative.sqlite",
        "memory",
        "file:///x.sqlite",
    ],
)
def test_an_unknown_database_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="database_url"):
        Settings(database_url=url)


def test_the_database_url_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITLEDGER_DATABASE_URL", "memory://")

    assert Settings().database_url == "memory://"


def test_without_configuration_the_ledger_lives_in_a_local_sqlite_file() -> None:
    assert Settings().database_url == DEFAULT_DATABASE_URL
    assert DEFAULT_DATABASE_URL.startswith("sqlite:///")


def test_numeric_settings_are_read_and_bounded_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CREDITLEDGER_MAX_ATTEMPTS", "3")
    assert Settings().max_attempts == 3

    monkeypatch.setenv("CREDITLEDGER_MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError, match="max_attempts"):
        Settings()


def test_settings_are_frozen_once_read() -> None:
    settings = Settings(database_url="memory://")

    with pytest.raises(ValidationError):
        settings.database_url = "sqlite:///other.sqlite"  # type: ignore[misc]
