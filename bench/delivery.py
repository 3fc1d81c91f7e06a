"""The delivery case: outbox emails committed at once, sent by the service's processes into
an SMTP sink in this process; rows/s and the commit → received latency of each row."""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import Any

import psycopg2
from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:\s*<outbox-(\d+)@", re.MULTILINE | re.IGNORECASE)
# Welcome emails need only a user; each row is a distinct delivery (its own key).
INSERT_ROWS = """
    INSERT INTO outbox (kind, payload, idempotency_key)
    SELECT 'email',
           jsonb_build_object('email_type', 'welcome', 'user_id', 1 + (g - 1) %% %(users)s,
                              'context', jsonb_build_object('verify_token', 'bench')),
           'bench-delivery:' || %(run)s || ':' || g
    FROM generate_series(1, %(rows)s) g
    RETURNING id
"""


# Rows a previous (interrupted) run left unsent would be claimed first (they are older).
DELETE_LEFTOVERS = """
    DELETE FROM outbox
    WHERE idempotency_key LIKE 'bench-delivery:%%' AND status IN ('pending', 'sending')
"""


# Due rows the earlier cases left (message emails come due 10 minutes after a write case, and
# an earlier run's) are claimed before this case's rows, oldest first: drain them first, or
# the case measures how long that backlog takes rather than its own rows.
COUNT_BACKLOG = """
    SELECT count(*) FROM outbox
    WHERE (status = 'pending' AND next_attempt_at <= now()) OR status = 'sending'
"""


class Sink:
    """aiosmtpd in a thread of its own, noting when each outbox message arrives."""

    def __init__(self) -> None:
        self.received: dict[int, float] = {}
        self.lock = threading.Lock()
        self.port = _free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        match = MESSAGE_ID.search(envelope.original_content or envelope.content)
        if match:
            with self.lock:
                self.received.setdefault(int(match[1]), time.time())
        return "250 OK"

    def start(self) -> int:
        self.controller.start()
        return self.port

    def stop(self) -> None:
        self.controller.stop()


def run_delivery(sink: Sink, database_url: str, rows: int, users: int, processes: int,
                 timeout: float = 120.0) -> dict[str, Any]:
    conn = psycopg2.connect(database_url)
    with conn, conn.cursor() as cur:
        cur.execute(DELETE_LEFTOVERS)
    backlog, left, drain_seconds = _drain_backlog(conn, timeout)
    with conn, conn.cursor() as cur:
        cur.execute(INSERT_ROWS, {"rows": rows, "users": users, "run": str(time.time())})
        ids = {row[0] for row in cur.fetchall()}
    committed = time.time()
    conn.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sink.lock:
            if ids.issubset(sink.received):
                break
        time.sleep(0.1)
    with sink.lock:
        latencies = sorted(sink.received[i] - committed for i in ids if i in sink.received)
    received = len(latencies)
    last = latencies[-1] if latencies else 0.0
    return {"rows": rows, "processes": processes, "received": received,
            "how": "rows inserted in one commit, claimed by the processes' sweepers, after "
                   f"{backlog} older due rows drained in {drain_seconds:.1f} s"
                   + (f" ({left} NOT drained: they went first)" if left else ""),
            "backlog_before": backlog, "backlog_left": left,
            "seconds": round(last, 2),
            "rows_per_second": round(received / last, 1) if last else 0.0,
            "first_ms": round(latencies[0] * 1000, 1) if latencies else None,
            "p50_ms": round(_percentile(latencies, 50) * 1000, 1),
            "p95_ms": round(_percentile(latencies, 95) * 1000, 1)}


def _drain_backlog(conn: Any, timeout: float) -> tuple[int, int, float]:
    """Wait (up to ``timeout``) until no older row is due or in flight: (at first, left, s)."""
    started = time.monotonic()
    first = left = _count_backlog(conn)
    while left and time.monotonic() - started < timeout:
        time.sleep(0.2)
        left = _count_backlog(conn)
    return first, left, time.monotonic() - started


def _count_backlog(conn: Any) -> int:
    with conn, conn.cursor() as cur:
        cur.execute(COUNT_BACKLOG)
        return int(cur.fetchone()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * percent / 100))]
