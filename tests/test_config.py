"""Settings: parsing, errors that name the variable, and README and ``run.py --help``
showing every variable with the default the code gives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.config import (
    SETTINGS_DEFAULTS,
    VARIABLES,
    ConfigError,
    RateLimit,
    Settings,
    Variable,
    load_settings,
)

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION = {"DATABASE_URL": "postgresql://db.internal/hireme", "SECRET_KEY": "s" * 40}


def readme_configuration_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) per row of README's Configuration table."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            name, default, meaning = (cell.strip() for cell in line.strip("|").split("|", 2))
            rows.append((name.strip("`"), default, meaning))
    return rows


def run_py_help_variables() -> list[tuple[str, str]]:
    """(variable, default) per line of the variables list ``python run.py --help`` prints."""
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    listing = result.stdout.split("environment variables and their defaults", 1)[1]
    return [(name, default) for name, default in
            (line.split(maxsplit=1) for line in listing.splitlines()[1:] if line.strip())]


def test_readme_documents_every_variable_with_its_default_and_meaning():
    documented = [(var.name, var.default, var.help) for var in VARIABLES]
    assert readme_configuration_table() == documented


def test_run_py_help_lists_every_variable_with_its_default():
    assert run_py_help_variables() == [(var.name, var.default) for var in VARIABLES]


def test_each_settings_field_is_set_by_exactly_one_variable():
    attributes = [var.attribute for var in VARIABLES]
    assert sorted(attributes) == sorted(set(SETTINGS_DEFAULTS) - {"local_run"})


@pytest.mark.parametrize("var", [var for var in VARIABLES if var.default_in_words is None],
                         ids=lambda var: var.name)
def test_the_default_shown_is_the_settings_default(var: Variable):
    """Setting a variable to the default README shows changes nothing."""
    if var.default == "(empty)":
        assert not SETTINGS_DEFAULTS[var.attribute]
    else:
        assert var.parse(var.default) == SETTINGS_DEFAULTS[var.attribute]


def test_variables_left_unset_get_the_settings_defaults():
    settings = load_settings(PRODUCTION)
    assert settings == Settings(database_url=PRODUCTION["DATABASE_URL"],
                                secret_key=PRODUCTION["SECRET_KEY"],
                                web_concurrency=os.cpu_count() or 1)


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
