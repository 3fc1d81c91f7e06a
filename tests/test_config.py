"""Settings: parsing, errors that name the variable, and README documenting every one."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import VARIABLES, ConfigError, RateLimit, load_settings

PRODUCTION = {"DATABASE_URL": "postgresql://db.internal/hireme", "SECRET_KEY": "s" * 40}


def test_every_variable_is_documented_in_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [var.name for var in VARIABLES if f"`{var.name}`" not in readme]
    assert missing == []


def test_values_are_parsed():
    settings = load_settings({**PRODUCTION, "PORT": "9000", "AUTH_RATE_LIMIT": "5/30",
                              "DATABASE_REPLICA_URLS": "postgresql://r1/h, postgresql://r2/h",
                              "WEB_CONCURRENCY": "3"})
    assert settings.port == 9000
    assert settings.auth_rate_limit == RateLimit(5, 30)
    assert settings.database_replica_urls == ("postgresql://r1/h", "postgresql://r2/h")
    assert settings.web_concurrency == 3
    assert settings.local_run is False


@pytest.mark.parametrize(("name", "value"), [
    ("PORT", "abc"), ("PORT", "0"), ("DATABASE_URL", "mysql://x/y"), ("REDIS_URL", "http://x"),
    ("AUTH_RATE_LIMIT", "10"), ("SMTP_URL", "ftp://mail"), ("DELIVERY_MAX_ATTEMPTS", "-1"),
    ("REQUEST_TIMEOUT", "nan"), ("LOG_LEVEL", "LOUD"), ("VAPID_PRIVATE_KEY", "not-a-key"),
    ("SMTP_URL", "smtp://mail:notaport"),
])
def test_a_bad_value_names_the_variable(name: str, value: str):
    with pytest.raises(ConfigError, match=name):
        load_settings({**PRODUCTION, name: value})


def test_production_requires_a_long_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"DATABASE_URL": PRODUCTION["DATABASE_URL"]})
    with pytest.raises(ConfigError, match="too short"):
        load_settings({**PRODUCTION, "SECRET_KEY": "short"})


def test_local_run_generates_its_secrets_once(tmp_path: Path):
    first = load_settings({}, var_dir=tmp_path)
    second = load_settings({}, var_dir=tmp_path)
    assert first.local_run and len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert first.vapid_private_key == second.vapid_private_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
