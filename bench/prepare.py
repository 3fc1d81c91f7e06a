"""Before a run: wrk installed, the benchmark database created and seeded, the pool written
as a Lua table for the wrk scripts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[1]


def ensure_wrk() -> str:
    """wrk's path; installs Debian's ``wrk`` with apt-get when missing (as make deps does)."""
    found = shutil.which("wrk")
    if found:
        return found
    if not shutil.which("apt-get"):
        raise SystemExit("wrk is missing and apt-get is not available: please install wrk")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("installing Debian package: wrk", flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)  # noqa: S603
    subprocess.run([*sudo, "env", "DEBIAN_FRONTEND=noninteractive",  # noqa: S603
                    "apt-get", "install", "-y",
                    "-qq", "--no-install-recommends", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def ensure_database(admin_url: str, name: str) -> str:
    """The benchmark's own database (created if absent); never the service's."""
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", flush=True)
    conn.close()
    return with_database(admin_url, name)


def vacuum(url: str) -> str:
    """VACUUM (ANALYZE) the benchmark database, then CHECKPOINT; PostgreSQL's ``autovacuum``
    setting.

    Each run's writes leave dead rows and pages whose rows are not yet all visible (so an
    index-only scan reads the heap too). In production autovacuum clears both between bursts;
    where it is off, as on this project's benchmark machine, each run measured a slower
    database than the one before. Each run starts from a vacuumed one instead. The vacuum
    dirties much of the database; the checkpoint writes it out before the first case, not
    during it (in run 20261207T170300 the cached reads, which ran first, measured a third
    lower than they did alone)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM (ANALYZE)")
        cur.execute("CHECKPOINT")
        cur.execute("SHOW autovacuum")
        setting = str(cur.fetchone()[0])
    conn.close()
    return setting


def ensure_seeded(url: str, scale: float, tokens_file: Path, env: dict[str, str]) -> dict[str, Any]:
    """Seed at ``scale`` unless the tokens file says this database already holds it."""
    if tokens_file.exists():
        summary: dict[str, Any] = json.loads(tokens_file.read_text())
        if summary.get("scale") == scale and summary.get("database_url") == url:
            print(f"using the scale {scale} data already seeded in {urlsplit(url).path[1:]}")
            return summary
    print(f"seeding {urlsplit(url).path[1:]} at scale {scale} (--force: this database is the "
          "benchmark's own)", flush=True)
    subprocess.run([sys.executable, str(ROOT / "run.py"), "seed",  # noqa: S603
                    "--scale", str(scale),
                    "--tokens-file", str(tokens_file), "--force"],
                   env={**env, "DATABASE_URL": url}, cwd=ROOT, check=True)
    summary = json.loads(tokens_file.read_text())
    summary["database_url"] = url
    tokens_file.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _lua_string(value: object) -> str:
    return json.dumps(str(value))  # a JSON string literal is a valid Lua string here


def write_pool_lua(summary: dict[str, Any], path: Path) -> Path:
    """The pool as a Lua table for ``dofile`` (tokens, conversation ids, search terms)."""
    users = ",\n".join(
        f"{{token={_lua_string(u['token'])}, conv={int(u['conversation_id'])}, "
        f"email={_lua_string(u['email'])}}}" for u in summary["users"])
    search, filters = summary["search"], summary["filter"]
    path.write_text(
        "return {\n"
        f"password={_lua_string(summary['password'])},\n"
        f"common={_lua_string(quote(search['common']))},\n"
        f"rare={_lua_string(quote(search['rare']))},\n"
        f"category={_lua_string(quote(filters['category']))},\n"
        f"location={_lua_string(quote(filters['location']))},\n"
        f"max_post_id={int(summary['max_post_id'])},\n"
        f"users={{\n{users}\n}}\n}}\n", encoding="utf-8")
    return path
