"""Configuration, health checks and error responses."""

import time

import pytest

from points.app import create_app
from points.config import ConfigError, Settings


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_health_is_503_quickly_when_the_database_is_down():
    app = create_app(
        Settings(
            database_url="postgresql://loyalty@127.0.0.1:1/loyalty",
            webhook_secret="s",
            db_timeout=10,
        )
    )
    try:
        started = time.monotonic()
        response = app.test_client().get("/health")
        assert response.status_code == 503
        assert response.get_json() == {"status": "unavailable", "database": "unavailable"}
        assert time.monotonic() - started < 4
        # Liveness does not depend on the database.
        assert app.test_client().get("/health/live").status_code == 200
    finally:
        app.extensions["points.db"].close()


def test_api_is_503_json_when_the_database_is_down():
    app = create_app(
        Settings(
            database_url="postgresql://loyalty@127.0.0.1:1/loyalty",
            webhook_secret="s",
            db_timeout=1,
        )
    )
    try:
        response = app.test_client().get("/api/contributors/alice")
        assert response.status_code == 503
        assert response.get_json()["error"] == "database_unavailable"
    finally:
        app.extensions["points.db"].close()


def test_unknown_route_and_method_are_json(client):
    response = client.get("/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"
    response = client.get("/webhooks/github")
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"


class TestSettings:
    def test_defaults(self, monkeypatch):
        for name in ("DATABASE_URL", "LOYALTY_DB_POOL_SIZE", "LOYALTY_DB_TIMEOUT", "LOG_LEVEL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LOYALTY_WEBHOOK_SECRET", "s3cret")
        assert Settings.from_env() == Settings(
            database_url="postgresql://loyalty@db:5432/loyalty",
            webhook_secret="s3cret",
            db_pool_size=4,
            db_timeout=5.0,
            log_level="INFO",
        )

    def test_from_environment(self, monkeypatch):
        monkeypatch.setenv("LOYALTY_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/d")
        monkeypatch.setenv("LOYALTY_DB_POOL_SIZE", "9")
        monkeypatch.setenv("LOYALTY_DB_TIMEOUT", "2.5")
        monkeypatch.setenv("LOG_LEVEL", "debug")
        settings = Settings.from_env()
        assert (
            settings.database_url,
            settings.db_pool_size,
            settings.db_timeout,
            settings.log_level,
        ) == (
            "postgresql://u@h/d",
            9,
            2.5,
            "DEBUG",
        )

    def test_secret_is_required(self, monkeypatch):
        monkeypatch.delenv("LOYALTY_WEBHOOK_SECRET", raising=False)
        with pytest.raises(ConfigError, match="LOYALTY_WEBHOOK_SECRET"):
            Settings.from_env()
        with pytest.raises(ConfigError, match="LOYALTY_WEBHOOK_SECRET"):
            create_app()

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("LOYALTY_DB_POOL_SIZE", "0"),
            ("LOYALTY_DB_POOL_SIZE", "many"),
            ("LOYALTY_DB_TIMEOUT", "-1"),
        ],
    )
    def test_malformed(self, monkeypatch, name, value):
        monkeypatch.setenv("LOYALTY_WEBHOOK_SECRET", "s3cret")
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            Settings.from_env()
