"""Configuration, read only from environment variables (L10).

POINTS_URL       base URL of the points service, default http://points:8000
POINTS_TIMEOUT   seconds for one call to the points service, default 5
POINTS_RETRIES   extra attempts when points is unreachable or overloaded, default 2
                 (safe: every debit carries an idempotency key)
LOG_LEVEL        default INFO
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(RuntimeError):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    points_url: str = "http://points:8000"
    points_timeout: float = 5.0
    points_retries: int = 2
    log_level: str = "INFO"

    @classmethod
    def from_env(cls) -> Settings:
        url = os.environ.get("POINTS_URL", "http://points:8000").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"POINTS_URL={url!r} must be an http:// or https:// URL")
        timeout_text = os.environ.get("POINTS_TIMEOUT", "5")
        retries_text = os.environ.get("POINTS_RETRIES", "2")
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise ConfigError(f"POINTS_TIMEOUT={timeout_text!r} is not a number") from None
        if not timeout > 0:
            raise ConfigError(f"POINTS_TIMEOUT={timeout_text} must be greater than 0")
        try:
            retries = int(retries_text)
        except ValueError:
            raise ConfigError(f"POINTS_RETRIES={retries_text!r} is not an integer") from None
        if not 0 <= retries <= 10:
            raise ConfigError(f"POINTS_RETRIES={retries} must be from 0 to 10")
        return cls(
            points_url=url,
            points_timeout=timeout,
            points_retries=retries,
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        )
