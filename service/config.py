"""Settings: read once from the environment into one frozen object, then passed down.

Each default is declared once, on its ``Settings`` field; ``VARIABLES`` names the environment
variable that sets each field and says what it means. README's configuration table and
``run.py --help`` are checked against them by a test, so nothing goes undocumented or stale.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/hireme"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_PREFIX = "hireme:"
DEFAULT_PUSH_ALLOWLIST = (  # the major browser push services
    "https://fcm.googleapis.com", "https://updates.push.services.mozilla.com",
    "https://web.push.apple.com", "https://wns2-par02p.notify.windows.com",
    "https://notify.windows.com",
)
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class RateLimit:
    """``N/SECONDS``: at most ``count`` attempts per ``window`` seconds."""

    count: int
    window: int


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    database_replica_urls: tuple[str, ...] = ()
    replica_max_lag_seconds: float = 5.0
    redis_url: str = DEFAULT_REDIS_URL
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    bind: str = "127.0.0.1"
    port: int = 8000
    web_concurrency: int = 1  # from the environment: the number of CPUs (load_settings)
    db_pool_size: int = 5
    db_pool_max_overflow: int = 10
    db_pool_recycle: float = 300.0
    db_acquire_timeout: float = 5.0
    db_prepare_statements: bool = True
    request_timeout: float = 60.0
    statement_timeout: float = 30.0
    max_body_size: int = 64 * 1024
    smtp_url: str = "smtp://127.0.0.1:1025"
    mail_from: str = "hireme <no-reply@hireme.local>"
    public_base_url: str = "http://127.0.0.1:8000"
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:admin@hireme.local"
    push_endpoint_allowlist: tuple[str, ...] = DEFAULT_PUSH_ALLOWLIST
    message_email_delay: float = 600.0
    secret_key: str = field(default="", repr=False)
    auth_rate_limit: RateLimit = RateLimit(10, 60)
    write_rate_limit: RateLimit = RateLimit(120, 60)
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    delivery_workers: int = 4
    delivery_lease_seconds: float = 60.0
    delivery_sweep_seconds: float = 5.0
    delivery_retry_base_seconds: float = 2.0
    delivery_max_attempts: int = 10
    delivery_lag_seconds: float = 300.0
    feed_fanout_max_followers: int = 10_000
    feed_active_days: int = 30
    log_level: str = "INFO"
    log_format: str = "text"
    local_run: bool = False  # no DATABASE_URL given: a newcomer's trial run on this machine


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _boolean(raw: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}
    if raw.strip().lower() not in words:
        raise ValueError("must be true or false")
    return words[raw.strip().lower()]


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # also rejects NaN
        raise ValueError("must be a non-negative number")
    return value


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not (parts.hostname or parts.path):
            raise ValueError(f"must be a URL with scheme {' or '.join(schemes)}")
        return raw

    return parse


def _url_list(*schemes: str) -> Callable[[str], tuple[str, ...]]:
    one = _url(*schemes)
    return lambda raw: tuple(one(item.strip()) for item in raw.split(",") if item.strip())


def _words(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _rate_limit(raw: str) -> RateLimit:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", raw)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ValueError("must look like N/SECONDS, e.g. 10/60")
    return RateLimit(int(match[1]), int(match[2]))


def _bind(raw: str) -> str:
    if not raw or (raw.startswith("unix:") and len(raw) == len("unix:")):
        raise ValueError("must be an address or unix:/path")
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _log_format(raw: str) -> str:
    form = raw.lower()
    if form not in {"text", "json"}:
        raise ValueError("must be text or json")
    return form


@dataclass(frozen=True)
class Variable:
    """One environment variable: it sets the ``Settings`` field ``attribute`` when given.

    Its default is that field's default, declared nowhere else; ``default`` is it as README
    and ``run.py --help`` show it. ``default_in_words`` replaces it where the default is not
    one value (computed at start-up, a list too long to show, or none at all).
    """

    name: str
    attribute: str
    parse: Callable[[str], Any]
    help: str
    default_in_words: str | None = None

    @property
    def default(self) -> str:
        if self.default_in_words is not None:
            return self.default_in_words
        return show_default(SETTINGS_DEFAULTS[self.attribute])


SETTINGS_DEFAULTS: Mapping[str, Any] = {item.name: item.default for item in fields(Settings)}


def show_default(value: Any) -> str:
    """A default written the way the variable would be set to it."""
    if isinstance(value, RateLimit):
        return f"{value.count}/{value.window}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        value = ",".join(value)
    if isinstance(value, float):
        value = f"{value:g}"
    return str(value) or "(empty)"


VARIABLES: tuple[Variable, ...] = (
    Variable("DATABASE_URL", "database_url", _url("postgresql", "postgres"),
             "PostgreSQL primary (libpq URL)"),
    Variable("DATABASE_REPLICA_URLS", "database_replica_urls",
             _url_list("postgresql", "postgres"),
             "comma-separated read replicas for slightly stale reads; empty: primary only"),
    Variable("REPLICA_MAX_LAG_SECONDS", "replica_max_lag_seconds", _non_negative_float,
             "a replica further behind the primary gets no reads until it catches up; also "
             "how long (plus 3 s) a user's reads stay on the primary after their own write"),
    Variable("REDIS_URL", "redis_url",
             _url("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"),
             "Redis for cache, rate limits, feeds; redis+cluster://host:port "
             "(rediss+cluster:// with TLS) names a Redis Cluster by any of its nodes"),
    Variable("REDIS_PREFIX", "redis_prefix", str,
             "prefix of every Redis key, so several deployments can share one Redis"),
    Variable("BIND", "bind", _bind, "listen address, or unix:/path for a socket"),
    Variable("PORT", "port", _positive_int, "listen port (ignored for a unix socket)"),
    Variable("WEB_CONCURRENCY", "web_concurrency", _positive_int,
             "worker processes run by `run.py serve`",
             default_in_words="number of CPUs"),  # load_settings counts them
    Variable("DB_POOL_SIZE", "db_pool_size", _positive_int,
             "aiopg pool minsize per worker process"),
    Variable("DB_POOL_MAX_OVERFLOW", "db_pool_max_overflow", int,
             "extra connections above DB_POOL_SIZE (pool maxsize = size + overflow)"),
    Variable("DB_POOL_RECYCLE", "db_pool_recycle", _non_negative_float,
             "seconds after which a pooled connection is replaced"),
    Variable("DB_ACQUIRE_TIMEOUT", "db_acquire_timeout", _non_negative_float,
             "seconds to wait for a database connection before answering 503"),
    Variable("DB_PREPARE_STATEMENTS", "db_prepare_statements", _boolean,
             "prepare the hot statements (the writes that notify, the outbox, the feed page "
             "and the notification, conversation and message lists) once per connection, each "
             "run on its generic plan; false behind a pooler that shares server connections "
             "between clients (PgBouncer in transaction mode)"),
    Variable("REQUEST_TIMEOUT", "request_timeout", _non_negative_float,
             "seconds a request may take before it is cancelled with 503"),
    Variable("STATEMENT_TIMEOUT", "statement_timeout", _non_negative_float,
             "PostgreSQL statement_timeout in seconds for the service's connections"),
    Variable("MAX_BODY_SIZE", "max_body_size", _positive_int,
             "request body limit in bytes (413 above it)"),
    Variable("SMTP_URL", "smtp_url", _url("smtp", "smtps"),
             "smtp://[user:pass@]host:port (?starttls=1 requires STARTTLS), smtps:// implicit TLS"),
    Variable("MAIL_FROM", "mail_from", str, "sender address"),
    Variable("PUBLIC_BASE_URL", "public_base_url", _url("http", "https"),
             "base URL used in links in emails and push payloads"),
    Variable("VAPID_PRIVATE_KEY", "vapid_private_key", str,
             "push signing key: a PEM file path or the raw key as base64url (`run.py vapid`)"),
    Variable("VAPID_SUBJECT", "vapid_subject", _url("mailto", "https"),
             "VAPID subject: mailto: or https: contact"),
    Variable("PUSH_ENDPOINT_ALLOWLIST", "push_endpoint_allowlist", _url_list("http", "https"),
             "comma-separated origins push endpoints may use",
             default_in_words="the major browser push services"),
    Variable("MESSAGE_EMAIL_DELAY", "message_email_delay", _non_negative_float,
             "seconds before an unread message is emailed"),
    Variable("SECRET_KEY", "secret_key", str,
             "signs admin sessions and unsubscribe links; at least 32 characters",
             default_in_words="none (required)"),
    Variable("AUTH_RATE_LIMIT", "auth_rate_limit", _rate_limit,
             "register/login/admin sign-in/password attempts per window, per IP and per account"),
    Variable("WRITE_RATE_LIMIT", "write_rate_limit", _rate_limit, "writes per token per window"),
    Variable("CORS_ORIGINS", "cors_origins", _url_list("http", "https"),
             "comma-separated browser origins allowed to call the API"),
    Variable("TRUSTED_PROXIES", "trusted_proxies", _words,
             "peers whose X-Forwarded-For is believed (nginx); others' is ignored"),
    Variable("DELIVERY_WORKERS", "delivery_workers", _positive_int,
             "delivery coroutines per worker process"),
    Variable("DELIVERY_LEASE_SECONDS", "delivery_lease_seconds", _non_negative_float,
             "how long a claimed delivery is held before another process may take it"),
    Variable("DELIVERY_SWEEP_SECONDS", "delivery_sweep_seconds", _non_negative_float,
             "how often each process sweeps for due or orphaned deliveries"),
    Variable("DELIVERY_RETRY_BASE_SECONDS", "delivery_retry_base_seconds",
             _non_negative_float, "first retry delay, doubled each attempt with jitter"),
    Variable("DELIVERY_MAX_ATTEMPTS", "delivery_max_attempts", _positive_int,
             "attempts before a delivery is dead"),
    Variable("DELIVERY_LAG_SECONDS", "delivery_lag_seconds", _non_negative_float,
             "/health says deliveries are lagging when the oldest due one waited longer"),
    Variable("FEED_FANOUT_MAX_FOLLOWERS", "feed_fanout_max_followers", _positive_int,
             "authors with more followers are merged into feeds at read time"),
    Variable("FEED_ACTIVE_DAYS", "feed_active_days", _positive_int,
             "only followers seen in this many days get feed fan-out"),
    Variable("LOG_LEVEL", "log_level", _log_level, "DEBUG, INFO, WARNING or ERROR"),
    Variable("LOG_FORMAT", "log_format", _log_format,
             "text (one readable line per record) or json (one JSON object per line: time, "
             "level, logger, process, request id, message; the access line adds method, route, "
             "path, status, duration_ms, user_id)"),
)


def load_settings(environ: Mapping[str, str] | None = None, *,
                  var_dir: Path = Path("var")) -> Settings:
    """Build Settings from ``environ`` (default: the process environment).

    Without DATABASE_URL this is a local trial run: a missing SECRET_KEY is generated into
    ``var_dir`` instead of being an error.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for var in VARIABLES:
        raw = env.get(var.name)
        if raw is None or raw == "":
            continue
        try:
            values[var.attribute] = var.parse(raw)
        except ValueError as error:
            raise ConfigError(f"{var.name}={raw!r} is invalid: {error}") from None
    values.setdefault("web_concurrency", os.cpu_count() or 1)
    values["local_run"] = "DATABASE_URL" not in env
    if values["local_run"]:
        values.setdefault("secret_key", _local_secret(var_dir, "secret_key", _new_secret_key))
        values.setdefault("vapid_private_key",
                          _local_secret(var_dir, "vapid_private_key", _new_vapid_key))
    _check_secret_key(values.get("secret_key", ""))
    settings = Settings(**values)
    _check_task_settings(settings)
    return settings


def _check_task_settings(settings: Settings) -> None:
    """Settings the delivery layer parses itself fail here, at start-up, not in a worker."""
    from tasks.email import parse_smtp_url
    from tasks.push import load_vapid_key
    from tasks.settings import SettingError

    try:
        parse_smtp_url(settings.smtp_url)
        if settings.vapid_private_key:
            load_vapid_key(settings.vapid_private_key)
    except SettingError as error:
        raise ConfigError(str(error)) from None


def _check_secret_key(secret: str) -> None:
    if not secret:
        raise ConfigError("SECRET_KEY is required (at least 32 characters) when DATABASE_URL "
                          "is set; generate one with: python -c 'import secrets; "
                          "print(secrets.token_urlsafe(48))'")
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"SECRET_KEY is too short: at least {MIN_SECRET_KEY_LENGTH} characters")


def _local_secret(var_dir: Path, name: str, make: Callable[[], str]) -> str:
    """A local run's secret, generated once into ./var/ and reused across restarts."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = make()
    path.touch(mode=0o600)
    path.write_text(secret)
    return secret


def _new_secret_key() -> str:
    import secrets

    return secrets.token_urlsafe(48)


def _new_vapid_key() -> str:
    """A P-256 private scalar as base64url, the form `run.py vapid` prints."""
    from tasks.webpush_keys import new_vapid_keys

    return new_vapid_keys().private
