"""Configuration, read only from environment variables (12-factor, L10).

Every setting has a documented default except the webhook secret, which has none on purpose:
a ledger that accepts unsigned webhooks would hand out points to anyone.

    DATABASE_URL            libpq URL or key=value string
                            default: postgresql://loyalty@db:5432/loyalty
                            (the password can come from PGPASSWORD, libpq's own variable)
    LOYALTY_WEBHOOK_SECRET  the secret configured on the GitHub webhook (required)
    LOYALTY_DB_POOL_SIZE    connections per worker process, default 4
    LOYALTY_DB_TIMEOUT      seconds to wait for a database connection, default 5
    LOG_LEVEL               default INFO
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    webhook_secret: str
    db_pool_size: int = 4
    db_timeout: float = 5.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls) -> Settings:
        secret = os.environ.get("LOYALTY_WEBHOOK_SECRET")
        if not secret:
            raise ConfigError(
                "LOYALTY_WEBHOOK_SECRET is not set: it must hold the secret configured on the "
                "GitHub webhook (the service refuses to start without it)"
            )
        return cls(
            database_url=os.environ.get("DATABASE_URL", "postgresql://loyalty@db:5432/loyalty"),
            webhook_secret=secret,
            db_pool_size=_int(
                "LOYALTY_DB_POOL_SIZE", os.environ.get("LOYALTY_DB_POOL_SIZE", "4"), 1
            ),
            db_timeout=_float("LOYALTY_DB_TIMEOUT", os.environ.get("LOYALTY_DB_TIMEOUT", "5")),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        )


def _int(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number") from None
    if not value > 0:
        raise ConfigError(f"{name}={text} must be greater than 0")
    return value
