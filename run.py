"""hireme command line: ``python run.py serve | migrate | seed | vapid | admin``.

``serve`` is a supervisor that serves no requests itself: it applies migrations, opens one
listening socket and keeps exactly ``WEB_CONCURRENCY`` worker processes serving on it,
restarting any that die. SIGTERM or SIGINT makes the workers drain, then it exits 0.
SIGHUP is a rolling restart: a new set of workers starts on the same socket, and once they
serve, the old ones are told to drain (new code and settings files, no refused request).
Without DATABASE_URL every command is a local trial run (see ``devservers.localrun``).
A configuration error exits 2 with a message naming the variable.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import getpass
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from devservers import localrun
from devservers.servers import ServerUnavailableError
from service import metrics
from service.admin import accounts as admin_accounts
from service.app import create_app
from service.config import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_PREFIX,
    DEFAULT_REDIS_URL,
    VARIABLES,
    ConfigError,
    Settings,
    load_settings,
)
from service.logformat import JsonFormatter
from service.middleware import RequestIdFilter
from service.passwords import hash_password
from service.tokens import new_auth_token
from sql.db import DatabaseUnavailable
from sql.migrate import apply_migrations
from sql.seed import (
    SEED_PASSWORD,
    DatabaseNotEmpty,
    SeedOptions,
    seed_database,
    write_tokens_file,
)
from sql.seed_plan import TOKEN_POOL_SIZE
from tasks.webpush_keys import new_vapid_keys

log = logging.getLogger("hireme.run")

LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s] %(message)s"
BACKLOG = 1024
GRACE_SECONDS = 30.0  # a worker's time to finish in-flight requests after SIGTERM
SETTLE_SECONDS = 0.5  # after SIGTERM, connections accepted just before may still send
KEEPALIVE_SECONDS = 75.0  # over nginx's upstream keepalive_timeout (60 s), which closes first
KILL_AFTER_SECONDS = GRACE_SECONDS + 10.0  # then the supervisor stops waiting and kills it
RESTART_DELAY_MIN_SECONDS = 1.0  # at most one restart per second ...
RESTART_DELAY_MAX_SECONDS = 30.0  # ... doubling up to this while workers keep dying young
STABLE_AFTER_SECONDS = 10.0  # a worker that lived this long resets the back-off
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
HANDLED_SIGNALS = STOP_SIGNALS | {signal.SIGHUP}
READY_TIMEOUT_SECONDS = 60.0  # a rolling restart gives up on new workers not serving by then


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command
    if command == "vapid":
        return print_vapid_keys()
    if command == "clean-local":
        return clean_local()
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        with localrun.local_servers(settings,
                                    redis=command not in ("migrate", "seed", "admin")) as settings:
            return SETTINGS_COMMANDS[command](settings, args)
    except ServerUnavailableError as error:
        print(f"local trial run: {error}", file=sys.stderr)
        return 1
    except DatabaseUnavailable as error:
        print(f"database unavailable: {error}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="hireme command line",
                                     epilog=variables_help(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the web service: a supervisor and its workers")
    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser("vapid", help="print a new VAPID key pair for web push")
    commands.add_parser("clean-local", help="remove what a local trial run made: ./var, the "
                                            "hireme database and its Redis keys")
    add_seed_parser(commands)
    add_admin_parser(commands)
    return parser


def variables_help() -> str:
    """The environment variables and their defaults, as README's Configuration table has them."""
    width = max(len(var.name) for var in VARIABLES) + 2
    lines = [f"  {var.name:<{width}}{var.default}" for var in VARIABLES]
    return "\n".join(["environment variables and their defaults (what each does: README.md, "
                      "Configuration):", *lines])


def add_admin_parser(commands: Any) -> None:
    admin = commands.add_parser("admin", help="create a staff account or promote a user")
    actions = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new staff account; the password is read "
                                               "from the terminal (or one line of stdin)")
    create.add_argument("--email", required=True)
    create.add_argument("--first-name", default="Admin")
    create.add_argument("--last-name", default="Staff")
    promote = actions.add_parser("promote", help="make an existing account staff")
    promote.add_argument("--email", required=True)


def add_seed_parser(commands: Any) -> None:
    seed = commands.add_parser("seed", help="bulk-load a realistic demo / benchmark data set")
    seed.add_argument("--scale", type=float, default=0.1,
                      help="1 = 100k users, 200k jobs, 1M posts, 5M notifications (default 0.1)")
    seed.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")
    seed.add_argument("--tokens-file", type=Path, default=Path("bench/results/tokens.json"),
                      help="where to write the login tokens of the benchmark's user pool")
    seed.add_argument("--pool", type=int, default=TOKEN_POOL_SIZE,
                      help="how many seeded users get a login token")
    seed.add_argument("--force", action="store_true",
                      help="truncate every table first (refused without it if users exist)")


def configure_logging(level: str, log_format: str = "text") -> None:
    """One stderr handler; every line carries the process id and the request id (or -),
    as readable text or (``LOG_FORMAT=json``) as one JSON object per line."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler])


# ---- vapid ----------------------------------------------------------------------------------

def print_vapid_keys() -> int:
    """Print a new P-256 pair: the raw private scalar and the public application server key."""
    keys = new_vapid_keys()
    print(f"VAPID_PRIVATE_KEY={keys.private}")
    print(f"VAPID_PUBLIC_KEY={keys.public}")
    return 0


# ---- clean-local ----------------------------------------------------------------------------

def clean_local() -> int:
    """Undo a local trial run; refused where DATABASE_URL says this is a real deployment."""
    if os.environ.get("DATABASE_URL"):
        print("clean-local only undoes a local trial run (no DATABASE_URL); refusing to touch "
              "the configured database", file=sys.stderr)
        return 2
    localrun.remove_trial_run(DEFAULT_DATABASE_URL,
                              os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL,
                              os.environ.get("REDIS_PREFIX") or DEFAULT_REDIS_PREFIX)
    return 0


# ---- migrate --------------------------------------------------------------------------------

def migrate(settings: Settings) -> int:
    applied = apply_pending_migrations(settings)
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return 0


def apply_pending_migrations(settings: Settings) -> list[str]:
    return asyncio.run(apply_migrations(settings.database_url))


# ---- seed ---------------------------------------------------------------------------------

def seed(settings: Settings, args: argparse.Namespace) -> int:
    for name in apply_pending_migrations(settings):
        print(f"applied {name}")
    password_hash = asyncio.run(hash_password(SEED_PASSWORD))
    options = SeedOptions(scale=args.scale, seed=args.seed, anchor=int(time.time()),
                          force=args.force)
    try:
        summary = seed_database(settings.database_url, options, password_hash=password_hash,
                                new_token=new_auth_token, pool_size=args.pool)
    except DatabaseNotEmpty as error:
        print(f"refusing to seed: {error}", file=sys.stderr)
        return 1
    write_tokens_file(args.tokens_file, summary)
    print(f"seeded; {len(summary['users'])} login tokens in {args.tokens_file} "
          f"(every seeded user's password: {SEED_PASSWORD})")
    return 0


# ---- serve ----------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def exit_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this worker when the supervisor dies (even by SIGKILL), so no
    orphan keeps serving unsupervised; the worker then drains as on any SIGTERM."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def serve(settings: Settings) -> int:
    for name in apply_pending_migrations(settings):
        log.info("applied migration %s", name)

    def serve_app(sock: socket.socket, ready: Callable[[], None]) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve_until_stopped(create_app(settings), sock, ready))

    with listening_socket(settings.bind, settings.port) as sock, metrics_directory():
        Supervisor(serve_app, sock, settings.web_concurrency).run()
    return 0


async def serve_until_stopped(app: web.Application, sock: socket.socket,
                              ready: Callable[[], None]) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT, then drain.

    The drain first stops accepting and waits ``SETTLE_SECONDS`` before aiohttp's cleanup
    closes every connection that has not started a request: a proxy sends its request right
    after connecting and retries only on connections it reused, so a connection accepted a
    moment before the signal must still get its answer.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=GRACE_SECONDS, keepalive_timeout=KEEPALIVE_SECONDS)
    await runner.setup()  # every cleanup_ctx set-up: the pools are open
    settle_garbage_collector()
    try:
        site = web.SockSite(runner, sock, backlog=BACKLOG)
        await site.start()
        ready()  # accepting now: a rolling restart may retire the old workers
        await stop.wait()
        await site.stop()
        await asyncio.sleep(SETTLE_SECONDS)
    finally:
        await runner.cleanup()


def settle_garbage_collector() -> None:
    """Once the app is set up, what exists (modules, the app, its pools: some 73,000 objects)
    lives as long as the process: frozen, it is left out of every later collection. Under
    load a worker's whole-heap collection ran every few seconds, each 28 ms in which no
    request moved; it now takes microseconds."""
    gc.collect()
    gc.freeze()


@contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh directory, private to this server, where every worker writes its metrics for
    /metrics to merge (under $TMPDIR; removed on exit). Set before any worker is forked and
    before prometheus_client is first imported (service.metrics imports it on first use),
    which is when it decides whether to write values to files or keep them in memory."""
    path = tempfile.mkdtemp(prefix="hireme-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        del os.environ[metrics.MULTIPROC_ENV]
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def listening_socket(bind: str, port: int) -> Iterator[socket.socket]:
    """The one socket all workers accept on: TCP ``bind:port``, or ``unix:/path``."""
    path = bind.removeprefix("unix:") if bind.startswith("unix:") else None
    try:
        if path is not None:
            remove_stale_socket(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(path)
        else:
            family, _, _, _, address = socket.getaddrinfo(
                bind, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as error:
        raise SystemExit(f"cannot listen on {path or f'{bind}:{port}'}: {error}") from None
    log.info("listening on %s", path or f"http://{bind}:{port}")
    try:
        yield sock
    finally:
        sock.close()
        if path is not None:
            os.unlink(path)


def remove_stale_socket(path: str) -> None:
    """Delete a socket file left by a previous run; refuse if a server still answers on it."""
    if not os.path.lexists(path):
        return
    if not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise SystemExit(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
    raise SystemExit(f"another server is listening on {path}")


@dataclass(frozen=True)
class Worker:
    process: BaseProcess
    started_at: float
    ready: multiprocessing.connection.Connection  # readable once the worker's app started


WorkFunction = Callable[[socket.socket, Callable[[], None]], None]


class Supervisor:
    """Keeps ``count`` forked workers running ``work(sock, ready)``; on SIGTERM/SIGINT stops
    them, on SIGHUP replaces them without a gap."""

    def __init__(self, work: WorkFunction, sock: socket.socket, count: int) -> None:
        self._work = work
        self._sock = sock
        self._count = count
        self._workers: dict[int, Worker] = {}  # by process sentinel
        self._retiring: dict[int, Worker] = {}  # draining after a reload; never restarted
        self._reload_requested = False
        self._pending_restarts = 0
        self._restart_delay = RESTART_DELAY_MIN_SECONDS
        self._next_restart_at = 0.0
        self._stopping = False
        self._supervisor_pid = os.getpid()
        # A signal writes a byte here, which wakes the wait for worker exits at once.
        self._wakeup, self._wakeup_writer = socket.socketpair()

    def run(self) -> None:
        self._wakeup_writer.setblocking(False)
        signal.set_wakeup_fd(self._wakeup_writer.fileno())
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._request_stop)
        signal.signal(signal.SIGHUP, self._request_reload)
        try:
            for _ in range(self._count):
                self._start_worker()
            while not self._stopping:
                if self._reload_requested:
                    self._reload_requested = False
                    self._roll_workers()
                self._wait_and_restart()
        finally:
            self._stop_workers()

    def _request_stop(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("%s received: stopping workers", signal.Signals(signum).name)
        self._stopping = True

    def _request_reload(self, _signum: int, _frame: object) -> None:
        self._reload_requested = True

    def _roll_workers(self) -> None:
        """Start ``count`` new workers; once all of them serve, SIGTERM the old ones, which
        stop accepting and finish what they hold while the new ones take the socket's queue.
        New workers that do not come up are stopped instead, and the old ones keep serving."""
        log.info("SIGHUP received: starting %d new workers", self._count)
        old = dict(self._workers)
        self._workers.clear()
        for _ in range(self._count):
            self._start_worker()
        new = dict(self._workers)
        if self._wait_until_ready(new):
            log.info("new workers serve; old workers %s drain",
                     sorted(worker.process.pid or 0 for worker in old.values()))
            self._retire(old)
            self._pending_restarts = 0  # the new set is complete: nothing to replace
        else:
            log.error("new workers did not start; the old ones keep serving")
            self._workers = old
            self._retire(new)

    def _wait_until_ready(self, workers: dict[int, Worker]) -> bool:
        waiting = {worker.ready: worker for worker in workers.values()}
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while waiting and not self._stopping:
            if any(worker.process.exitcode is not None for worker in waiting.values()):
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for item in multiprocessing.connection.wait(
                    [self._wakeup, *waiting], min(remaining, 0.5)):
                if item is self._wakeup:
                    self._wakeup.recv(64)
                elif isinstance(item, multiprocessing.connection.Connection):
                    try:
                        item.recv_bytes()
                    except EOFError:  # it died before its app started
                        return False
                    waiting.pop(item)
        return not waiting

    def _retire(self, workers: dict[int, Worker]) -> None:
        for sentinel, worker in workers.items():
            worker.process.terminate()  # SIGTERM: stops accepting, finishes in-flight requests
            self._retiring[sentinel] = worker

    def _wait_and_restart(self) -> None:
        timeout = None
        if self._pending_restarts:
            timeout = max(0.0, self._next_restart_at - time.monotonic())
        ready = multiprocessing.connection.wait(
            [self._wakeup, *self._workers, *self._retiring], timeout)
        for item in ready:
            if isinstance(item, int) and item in self._retiring:  # drained after a reload
                self._reap(self._retiring.pop(item))
            elif isinstance(item, int):  # a worker's sentinel: it exited
                self._note_exit(self._workers.pop(item))
            else:
                self._wakeup.recv(64)
        while not self._stopping and self._pending_restarts and (
                time.monotonic() >= self._next_restart_at):
            self._pending_restarts -= 1
            self._next_restart_at = time.monotonic() + self._restart_delay
            self._start_worker()

    def _reap(self, worker: Worker) -> None:
        worker.process.join()  # it has exited already
        worker.ready.close()
        if worker.process.pid is not None:
            metrics.mark_process_dead(worker.process.pid)

    def _note_exit(self, worker: Worker) -> None:
        self._reap(worker)
        lived = time.monotonic() - worker.started_at
        if lived >= STABLE_AFTER_SECONDS:
            self._restart_delay = RESTART_DELAY_MIN_SECONDS
        else:
            self._restart_delay = min(self._restart_delay * 2, RESTART_DELAY_MAX_SECONDS)
        self._pending_restarts += 1
        log.warning("worker %s exited with code %s after %.1fs; restarting it",
                    worker.process.pid, worker.process.exitcode, lived)

    def _start_worker(self) -> None:
        ready_reader, ready_writer = multiprocessing.Pipe(duplex=False)
        process = multiprocessing.get_context("fork").Process(
            target=self._run_worker, args=(ready_writer,), name="hireme-worker")
        with signals_blocked():  # the new worker handles them only once its own are set
            process.start()
        ready_writer.close()
        self._workers[process.sentinel] = Worker(process, time.monotonic(), ready_reader)
        log.info("started worker %s", process.pid)

    def _run_worker(self, ready: multiprocessing.connection.Connection) -> None:
        """In the worker: undo the supervisor's signal set-up, then work until SIGTERM."""
        # Its own process group, so a terminal's Ctrl-C reaches only the supervisor, which
        # sends one SIGTERM: a second signal would cut the worker's drain short.
        os.setpgid(0, 0)
        exit_with_parent(self._supervisor_pid)
        signal.set_wakeup_fd(-1)
        self._wakeup.close()
        self._wakeup_writer.close()
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloading is the supervisor's job
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED_SIGNALS)
        self._work(self._sock, lambda: ready.send_bytes(b"1"))

    def _stop_workers(self) -> None:
        # Once the workers close their copies too, new connections are refused at once
        # instead of queueing on a socket nobody accepts from while the workers drain.
        self._sock.close()
        workers = [*self._workers.values(), *self._retiring.values()]
        for worker in workers:
            worker.process.terminate()  # SIGTERM: the app stops accepting and drains
        deadline = time.monotonic() + KILL_AFTER_SECONDS
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.error("worker %s did not stop in time; killing it", worker.process.pid)
                worker.process.kill()
                worker.process.join()
        log.info("all workers stopped")


@contextmanager
def signals_blocked() -> Iterator[None]:
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# ---- admin --------------------------------------------------------------------------------

def admin(settings: Settings, args: argparse.Namespace) -> int:
    apply_pending_migrations(settings)
    if args.admin_command == "promote":
        user_id = asyncio.run(admin_accounts.promote(settings.database_url, args.email))
        if user_id is None:
            print(f"no account has the email {args.email}", file=sys.stderr)
            return 1
        print(f"user {user_id} ({args.email}) is now an admin")
        return 0
    password = (getpass.getpass("Password for the new admin: ") if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\n"))
    try:
        user_id = asyncio.run(admin_accounts.create(
            settings.database_url, email=args.email, password=password,
            first_name=args.first_name, last_name=args.last_name))
    except admin_accounts.AdminAccountError as error:
        print(f"cannot create the admin: {error}", file=sys.stderr)
        return 1
    print(f"admin {user_id} ({args.email}) created; sign in at /admin/login")
    return 0


SETTINGS_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "serve": lambda settings, _: serve(settings),
    "migrate": lambda settings, _: migrate(settings),
    "seed": seed,
    "admin": admin,
}

if __name__ == "__main__":
    sys.exit(main())
