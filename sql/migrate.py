"""Apply the plain-SQL migrations in ``sql/migrations``, each once, in file-name order.

Each file runs in its own transaction together with its row in ``schema_migrations``, so a
file is either applied and recorded or neither. A session advisory lock, taken on the one
connection that does the work, makes runners that start together (several processes on
``serve``) take turns: the later ones find nothing left to apply. Files must therefore be
transactional (no ``CREATE INDEX CONCURRENTLY``, no ``VACUUM``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiopg
import psycopg2

from sql.db import DatabaseUnavailable

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_GLOB = "[0-9][0-9][0-9][0-9]_*.sql"
# The pg_advisory_lock key every runner shares: "hireme" in ASCII, then 0x0001.
MIGRATION_LOCK_ID = 0x6869_7265_6D65_0001
CONNECT_TIMEOUT_S = 30.0
# Bounds each statement: waiting for another runner's lock, or one whole migration file.
STATEMENT_TIMEOUT_S = 3600.0

LOCK_MIGRATIONS = "SELECT pg_advisory_lock(%(lock_id)s)"
CREATE_MIGRATIONS_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        name       text PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""
SELECT_APPLIED_NAMES = "SELECT name FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (name) VALUES (%(name)s)"


def migration_files() -> list[Path]:
    """Every migration file, in the order they apply (the ``NNNN_`` prefix sorts them)."""
    return sorted(MIGRATIONS_DIR.glob(MIGRATION_GLOB), key=lambda path: path.name)


async def apply_migrations(dsn: str) -> list[str]:
    """Apply the pending migrations; returns the file names applied (empty when up to date).

    An unreachable server raises DatabaseUnavailable, so callers can say so plainly.
    """
    try:
        return await _apply_pending(dsn)
    except (psycopg2.OperationalError, OSError) as error:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL to migrate: {error}") from error


async def _apply_pending(dsn: str) -> list[str]:
    async with (
        aiopg.connect(dsn, timeout=CONNECT_TIMEOUT_S, enable_hstore=False,
                      enable_uuid=False) as conn,
        conn.cursor(timeout=STATEMENT_TIMEOUT_S) as cur,
    ):
        # A session lock, released when this connection closes, also if the process dies.
        await cur.execute(LOCK_MIGRATIONS, {"lock_id": MIGRATION_LOCK_ID})
        await cur.execute(CREATE_MIGRATIONS_TABLE)
        applied = await _applied_names(cur)
        pending = [path for path in migration_files() if path.name not in applied]
        for path in pending:
            await _apply_file(cur, path)
        return [path.name for path in pending]


async def _applied_names(cur: aiopg.Cursor) -> set[str]:
    await cur.execute(SELECT_APPLIED_NAMES)
    return {str(name) for (name,) in await cur.fetchall()}


async def _apply_file(cur: aiopg.Cursor, path: Path) -> None:
    """Run one file and record it, in one transaction (aiopg connections are autocommit)."""
    script = await asyncio.to_thread(path.read_text, encoding="utf-8")
    await cur.execute("BEGIN")
    try:
        await cur.execute(script)
        await cur.execute(RECORD_MIGRATION, {"name": path.name})
    except BaseException:
        await _rollback_quietly(cur, path)
        raise
    await cur.execute("COMMIT")


async def _rollback_quietly(cur: aiopg.Cursor, path: Path) -> None:
    try:
        await cur.execute("ROLLBACK")
    except Exception:  # the connection may be gone; the server rolls back on disconnect
        log.warning("rollback of migration %s failed", path.name, exc_info=True)
