import pytest

from rewards.config import ConfigError, Settings
from rewards.main import voucher_code


def test_defaults(monkeypatch):
    for name in ("POINTS_URL", "POINTS_TIMEOUT", "POINTS_RETRIES", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env() == Settings(
        points_url="http://points:8000", points_timeout=5.0, points_retries=2, log_level="INFO"
    )


def test_from_environment(monkeypatch):
    monkeypatch.setenv("POINTS_URL", "http://localhost:9000/")
    monkeypatch.setenv("POINTS_TIMEOUT", "1.5")
    monkeypatch.setenv("POINTS_RETRIES", "0")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    assert Settings.from_env() == Settings("http://localhost:9000", 1.5, 0, "WARNING")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POINTS_URL", "points:8000"),
        ("POINTS_TIMEOUT", "soon"),
        ("POINTS_TIMEOUT", "0"),
        ("POINTS_RETRIES", "-1"),
        ("POINTS_RETRIES", "x"),
    ],
)
def test_malformed(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        Settings.from_env()


def test_voucher_is_stable_per_key_and_debit():
    assert voucher_code("coffee", "k", 1) == voucher_code("coffee", "k", 1)
    assert voucher_code("coffee", "k", 1) != voucher_code("coffee", "k", 2)
    assert voucher_code("coffee", "k", 1) != voucher_code("coffee", "j", 1)
    assert voucher_code("tea", "k", 1).startswith("TEA-")
