"""Private PostgreSQL and Redis servers started from the local binaries, and databases on them.

One implementation for the local trial run (``devservers.localrun``) and the test suite
(``tests/servers.py``). A server is ours when we started it: only such servers are ever
stopped; a server that merely answers on a URL is used as it is and never reconfigured.
Data lives in a directory given by the caller (kept afterwards, as the trial run's
``./var``) or in a temporary one that goes when the server is closed.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import glob
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg2
import redis
from psycopg2 import sql
from psycopg2.extensions import make_dsn

logger = logging.getLogger(__name__)

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PROBE_TIMEOUT_S = 2
START_TIMEOUT_S = 30
REDIS_OPTIONS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no")
# PostgreSQL refuses to run as root; these users own a private cluster when we are root.
UNPRIVILEGED_USERS = ("postgres", "nobody")
# A trial run's workers (pool size plus overflow each) outnumber the default 100.
MAX_CONNECTIONS = 200
# Only for data that is thrown away with the server: a crash may then corrupt it.
SPEED_OVER_DURABILITY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

POSTGRES_MISSING = (
    "no PostgreSQL binaries (initdb, pg_ctl, postgres) on PATH or in "
    f"{POSTGRES_BIN_GLOB}: install the Debian package `postgresql` (`make deps` does)"
)
REDIS_MISSING = (
    "no redis-server on PATH: install the Debian package `redis-server` (`make deps` does)"
)


class ServerUnavailableError(RuntimeError):
    """A server could not be found or started; the message says what to do instead."""


# ---- ports and probes -----------------------------------------------------------------------

def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(url: str, *, default_port: int) -> bool:
    """Whether something accepts connections where ``url`` points (TCP or a ``unix:`` path)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return _accepts(socket.AF_UNIX, parts.path)
    return _accepts(socket.AF_INET, (parts.hostname or "127.0.0.1", parts.port or default_port))


def _accepts(family: int, address: str | tuple[str, int]) -> bool:
    with socket.socket(family) as probe:
        probe.settimeout(PROBE_TIMEOUT_S)
        try:
            probe.connect(address)
        except OSError:
            return False
    return True


def postgres_answers(url: str) -> bool:
    """Tell whether ``url`` accepts a connection whose role may create databases."""
    try:
        with contextlib.closing(psycopg2.connect(url, connect_timeout=PROBE_TIMEOUT_S)) as conn:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
                )
                row = cur.fetchone()
            return bool(row and row[0])
    except psycopg2.Error:
        return False


def redis_answers(url: str) -> bool:
    """Tell whether the Redis server at ``url`` answers PING."""
    client = redis_client(
        url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, redis.exceptions.RedisClusterException):
        return False
    finally:
        client.close()


def redis_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client: one server, or a cluster for the app's ``redis+cluster://`` URLs
    (SCAN then covers every master, DEL splits per slot)."""
    scheme, _, rest = url.partition("://")
    if scheme.endswith("+cluster"):
        return cast(redis.Redis, redis.RedisCluster.from_url(
            f"{scheme.removesuffix('+cluster')}://{rest}", **options))
    return redis.Redis.from_url(url, **options)


# ---- databases ------------------------------------------------------------------------------

def database_url(server_url: str, name: str) -> str:
    """Return ``server_url`` (a URL or a key=value DSN) pointing at database ``name``."""
    if "://" not in server_url:
        return str(make_dsn(server_url, dbname=name))
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (optionally as a copy of ``template``); return its URL."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    with _autocommit_cursor(admin_url) as cur:
        cur.execute(query)
    return database_url(admin_url, name)


def ensure_database(url: str) -> None:
    """Create the database that ``url`` names unless it exists, via the server's ``postgres``
    database; raises psycopg2.Error when the server refuses us."""
    name = _database_name(url)
    admin_url = database_url(url, "postgres")
    with _autocommit_cursor(admin_url) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name})
        if cur.fetchone() is not None:
            return
    create_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, terminating any sessions still connected to it."""
    query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with _autocommit_cursor(admin_url) as cur:
        cur.execute(query)


def drop_database_of(url: str) -> None:
    """Drop the database that ``url`` names, via the server's ``postgres`` database."""
    drop_database(database_url(url, "postgres"), _database_name(url))


def _database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


@contextlib.contextmanager
def _autocommit_cursor(url: str) -> Iterator[Any]:
    """A cursor outside any transaction, as CREATE and DROP DATABASE require."""
    with contextlib.closing(psycopg2.connect(url, connect_timeout=PROBE_TIMEOUT_S)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            yield cur


# ---- where and as whom servers run ----------------------------------------------------------

def find_postgres_bindir() -> Path | None:
    """Return a directory holding initdb, pg_ctl and postgres: the one on PATH, else the
    newest version installed (all three must come from one installation)."""
    candidates: list[Path] = []
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    versioned = sorted(glob.glob(POSTGRES_BIN_GLOB), key=_version_key, reverse=True)
    candidates.extend(Path(path) for path in versioned)
    for bindir in candidates:
        if all((bindir / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _version_key(path: str) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin numerically by version."""
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Return the user to run PostgreSQL as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerUnavailableError(f"running as root, and none of {UNPRIVILEGED_USERS} exist")


def _make_tempdir(prefix: str, owner: pwd.struct_passwd | None) -> Path:
    """Create a temporary directory, owned by ``owner`` when given (it must reach it)."""
    base = tempfile.gettempdir()
    if owner is not None and not _world_traversable(Path(base)):
        base = "/tmp"  # a private mkdtemp below it, reachable by the owner
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _prepare_directory(path: Path, owner: pwd.struct_passwd | None) -> None:
    """Create a kept directory, owned by ``owner`` when given, who must be able to reach it."""
    path.mkdir(parents=True, exist_ok=True)
    if owner is None:
        return
    if not _world_traversable(path.parent):
        raise ServerUnavailableError(
            f"running as root, PostgreSQL runs as {owner.pw_name}, who cannot reach {path}: "
            "run as a normal user")
    os.chown(path, owner.pw_uid, owner.pw_gid)


def _world_traversable(path: Path) -> bool:
    """Tell whether every directory from / down to ``path`` may be entered by anyone."""
    return all(os.stat(p).st_mode & 0o001 for p in [path.resolve(), *path.resolve().parents])


def _pick_locale() -> list[str]:
    """Prefer C.UTF-8 (Unicode-aware ctype, byte-order collation), else the plain C locale."""
    try:
        available = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        available = []
    if any(name.lower() in ("c.utf8", "c.utf-8") for name in available):
        return ["--locale=C.UTF-8"]
    return ["--no-locale"]


# ---- servers --------------------------------------------------------------------------------

class _Throwaway(abc.ABC):
    """A server of our own: ``with`` starts it, then closes it.

    ``_tempdir`` is set when the data lives in a temporary directory of ours, which ``close``
    deletes; a directory the caller gave is kept.
    """

    _tempdir: Path | None = None

    @abc.abstractmethod
    def start(self) -> None:
        """Start the server (again) and wait until it answers."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the server, keeping its directory for a later start."""

    def close(self) -> None:
        """Stop the server and delete its temporary directory."""
        try:
            self.stop()
        finally:
            if self._tempdir is not None:
                shutil.rmtree(self._tempdir, ignore_errors=True)
                self._tempdir = None

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ThrowawayPostgres(_Throwaway):
    """A private PostgreSQL cluster, superuser ``postgres`` with trust auth, loopback only.

    ``directory`` holds the data (``data/``), the log and the socket; it is created (initdb)
    on the first start and kept afterwards. Without it a temporary directory is used, tuned
    for speed over durability, and deleted by ``close()``. ``start()`` and ``stop()`` may be
    repeated: the port and the data stay the same. As root, the cluster runs as an
    unprivileged user (PostgreSQL refuses root).
    """

    def __init__(self, *, port: int | None = None, directory: Path | None = None) -> None:
        bindir = find_postgres_bindir()
        if bindir is None:
            raise ServerUnavailableError(POSTGRES_MISSING)
        self.bindir = bindir
        self.port = port or free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.running = False
        self._owner = _unprivileged_user()
        self._directory = directory.absolute() if directory is not None else None
        self._tempdir = None

    @property
    def directory(self) -> Path:
        """The directory holding the data, the log and the socket (exists once started)."""
        directory = self._directory or self._tempdir
        if directory is None:
            raise RuntimeError("the cluster has not been started yet")
        return directory

    @property
    def datadir(self) -> Path:
        """The cluster's data directory (exists after the first start)."""
        return self.directory / "data"

    @property
    def logfile(self) -> Path:
        """The server's log, quoted in errors when it fails to start."""
        return self.directory / "postgres.log"

    def start(self) -> None:
        """Start the server, creating the cluster the first time; wait until it accepts."""
        if self.running:
            return
        self._create_cluster_once()
        if (self.datadir / "postmaster.pid").exists():
            # A server left behind by a run that was killed; it would hold the data directory.
            with contextlib.suppress(ServerUnavailableError):
                self._pg_ctl("stop", "-w", "-m", "fast")
        # Port and sockets on the command line: a kept cluster gets a fresh port each run.
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={shlex.quote(str(self.directory))}")
        try:
            self._pg_ctl("start", "-w", "-t", str(START_TIMEOUT_S), "-l", str(self.logfile),
                         "-o", options)
        except ServerUnavailableError as exc:
            log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
            raise ServerUnavailableError(f"{exc}\n--- {self.logfile} ---\n{log[-4000:]}") from None
        self.running = True
        logger.info("private PostgreSQL up at %s (data in %s)", self.url, self.datadir)

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server; ``immediate`` stops it the way a crash would."""
        if not self.running:
            return
        self._pg_ctl("stop", "-w", "-t", str(START_TIMEOUT_S), "-m", mode)
        self.running = False

    def _create_cluster_once(self) -> None:
        if self._directory is not None:
            _prepare_directory(self._directory, self._owner)
            if not (self.datadir / "PG_VERSION").exists():
                self._initdb()
            return
        if self._tempdir is not None:
            return
        self._tempdir = _make_tempdir("hireme-pg-", self._owner)
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
            raise

    def _initdb(self) -> None:
        """Create a trust-authenticated cluster (tuned for speed when it is thrown away)."""
        options = ["-U", "postgres", "-A", "trust", "-E", "UTF8", *_pick_locale()]
        if self._directory is None:
            options.append("--no-sync")
        self._run("initdb", "-D", str(self.datadir), *options)
        settings = {"max_connections": str(MAX_CONNECTIONS)}
        if self._directory is None:
            settings |= SPEED_OVER_DURABILITY
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# hireme\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), *args)

    def _run(self, exe: str, *args: str) -> None:
        """Run a PostgreSQL program, as the unprivileged owner when we are root."""
        owner = self._owner
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        result = subprocess.run(
            [str(self.bindir / exe), *args],
            cwd=self.directory,
            env=env,
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 10,
            check=False,
        )
        if result.returncode != 0:
            raise ServerUnavailableError(
                f"{exe} {' '.join(args)} failed ({result.returncode}): "
                f"{result.stdout.strip()} {result.stderr.strip()}"
            )


class ThrowawayReplica(ThrowawayPostgres):
    """A streaming replica of a running private primary, in a temporary directory.

    The first ``start()`` copies the primary with ``pg_basebackup -R`` (which writes
    ``primary_conninfo`` and ``standby.signal``); initdb's pg_hba already trusts replication
    connections from loopback and PostgreSQL's defaults (``wal_level=replica``,
    ``max_wal_senders=10``) allow them. Stop and start it like the primary.
    """

    def __init__(self, primary: ThrowawayPostgres) -> None:
        super().__init__()
        self.primary = primary

    def _initdb(self) -> None:
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port),
                  "-U", "postgres", "-D", str(self.datadir), "-R", "-X", "stream",
                  "-c", "fast", "--no-sync")


def _spawn_redis(executable: str, port: int, directory: Path,
                 *options: str) -> subprocess.Popen[bytes]:
    """Start redis-server without persistence, its files and log in ``directory``."""
    return subprocess.Popen(
        [executable, "--port", str(port), "--dir", str(directory), *REDIS_OPTIONS, *options,
         "--logfile", str(directory / "redis.log")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # Its own session, so a terminal's Ctrl-C does not stop it before the trial run's
        # workers drain; we stop it ourselves.
        start_new_session=True)


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after 10 s, and reap."""
    for process in processes:
        process.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ThrowawayRedis(_Throwaway):
    """A private redis-server without persistence.

    Its log goes to ``directory`` (kept) or to a temporary directory (deleted by ``close()``).
    ``start()`` and ``stop()`` may be repeated on the same port; keys do not survive a stop.
    """

    def __init__(self, *, port: int | None = None, directory: Path | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ServerUnavailableError(REDIS_MISSING)
        self.executable = exe
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._directory = directory.absolute() if directory is not None else None
        self._tempdir = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start redis-server and wait until it answers PING."""
        if self._process is not None:
            return
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
        elif self._tempdir is None:
            self._tempdir = _make_tempdir("hireme-redis-", None)
        directory = self._directory or self._tempdir
        assert directory is not None
        self._process = _spawn_redis(self.executable, self.port, directory)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not redis_answers(self.url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                logfile = directory / "redis.log"
                log = logfile.read_text(errors="replace") if logfile.exists() else ""
                raise ServerUnavailableError(
                    f"redis-server did not start on {self.url}:\n{log[-4000:]}")
            time.sleep(0.05)
        logger.info("private Redis up at %s", self.url)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang and time out, data is kept."""
        assert self._process is not None, "start() the server first"
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT), with every key it held."""
        assert self._process is not None, "start() the server first"
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and reap it."""
        process, self._process = self._process, None
        if process is not None:
            _terminate([process])


class ThrowawayRedisCluster(_Throwaway):
    """A private Redis Cluster of three masters on loopback, no replicas, no persistence.

    ``url`` is the app's ``redis+cluster://`` form, naming the first node; every node's
    cluster state lives in the temporary directory and goes with it.
    """

    MASTERS = 3

    def __init__(self) -> None:
        exe, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if exe is None or cli is None:
            raise ServerUnavailableError(REDIS_MISSING)
        self.executable, self.cli = exe, cli
        self.ports = [free_port() for _ in range(self.MASTERS)]
        # The cluster bus defaults to port + 10000, which may be taken or past 65535.
        self.bus_ports = [free_port() for _ in range(self.MASTERS)]
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}"
        self._tempdir = None
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the nodes, join them into one cluster and wait for ``cluster_state:ok``."""
        if self._processes:
            return
        self._tempdir = _make_tempdir("hireme-redis-cluster-", None)
        for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self._tempdir / str(port)
            node_dir.mkdir()
            self._processes.append(_spawn_redis(
                self.executable, port, node_dir, "--cluster-enabled", "yes",
                "--cluster-port", str(bus_port),
                "--cluster-config-file", str(node_dir / "nodes.conf")))
        for port in self.ports:
            self._wait(functools.partial(redis_answers, f"redis://127.0.0.1:{port}"),
                       f"redis-server on port {port} did not start")
        subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=START_TIMEOUT_S)
        self._wait(self._is_ok, "the Redis Cluster did not reach cluster_state:ok")
        logger.info("private Redis Cluster up at %s", self.url)

    def _is_ok(self) -> bool:
        for port in self.ports:
            client = redis.Redis(port=port, socket_timeout=PROBE_TIMEOUT_S)
            try:
                info = client.cluster("info")
            except redis.RedisError:
                return False
            finally:
                client.close()
            if info.get("cluster_state") != "ok":
                return False
        return True

    def _wait(self, ready: Callable[[], bool], failure: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self._processes):
                self.stop()
                raise ServerUnavailableError(failure)
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after 10 s) and reap them."""
        processes, self._processes = self._processes, []
        _terminate(processes)
