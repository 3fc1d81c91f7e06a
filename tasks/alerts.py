"""The job alert scheduler: every process scans for due alerts and runs each one once.

An alert is claimed with ``FOR UPDATE SKIP LOCKED`` and run in its own transaction: the
email's outbox row, the new high-water mark and the next run time commit together, so
however many processes scan at once, an alert runs once a period and no job is sent twice.
The mark is a snapshot, not a job id, so a job whose transaction commits after a run saw a
newer job is sent by the next run instead of never (sql/alerts.py says why).
"""

from __future__ import annotations

import asyncio
import logging
import random

from sql.alerts import (
    claim_due_alert_txn,
    finish_alert_run_txn,
    matching_job_ids_txn,
    postpone_alert,
    take_snapshot_txn,
)
from sql.db import DatabaseUnavailable, Row
from tasks.background import cancel_until_done
from tasks.notify import enqueue_alert_email_txn
from tasks.settings import TaskSettings
from tasks.work import Stores, Work, unit_of_work

log = logging.getLogger(__name__)

ALERT_SCAN_SECONDS = 60.0  # each process's pause between scans, jittered ±20%
SCAN_BATCH = 100  # alerts per scan; a full batch is followed by another at once
MAX_JOBS_PER_EMAIL = 20
FAILED_ALERT_RETRY_SECONDS = 3600.0


async def run_due_alerts(stores: Stores, settings: TaskSettings, *, limit: int = 100) -> int:
    """Run up to ``limit`` due alerts, one transaction each; how many ran.

    An alert whose run fails (a match query past the statement timeout) is postponed, so it
    cannot hold up the alerts behind it. ``settings`` is unused so far: the email's links
    are built when it is sent.
    """
    for ran in range(limit):
        alert = None
        try:
            async with unit_of_work(stores, "run_job_alert") as work:
                alert = await claim_due_alert_txn(work.cur)
                if alert is None:
                    return ran
                await run_alert_txn(work, alert)
        except Exception as error:
            if alert is None or isinstance(error, DatabaseUnavailable):
                raise
            log.exception("job alert %s failed; postponed %s s", alert["id"],
                          FAILED_ALERT_RETRY_SECONDS)
            await postpone_alert(stores.db, alert["id"], FAILED_ALERT_RETRY_SECONDS)
    return limit


async def run_alert_txn(work: Work, alert: Row) -> None:
    """Queue one email with the new matching jobs, if any; schedule the next run."""
    snapshot = await take_snapshot_txn(work.cur)
    job_ids = await matching_job_ids_txn(work.cur, alert, snapshot, MAX_JOBS_PER_EMAIL)
    if job_ids:
        await enqueue_alert_email_txn(work, alert["user_id"], alert["id"], job_ids)
    await finish_alert_run_txn(work.cur, alert, snapshot, sent=bool(job_ids))


class AlertScheduler:
    """A background loop around ``run_due_alerts``: logs a failure and carries on."""

    def __init__(self, stores: Stores, settings: TaskSettings,
                 interval: float = ALERT_SCAN_SECONDS) -> None:
        self.stores = stores
        self.settings = settings
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="job-alert-scheduler")

    async def stop(self) -> None:
        """Cancel the loop; an alert in the middle of its run rolls back and stays due."""
        if self._task is not None:
            await cancel_until_done(self._task)

    async def _loop(self) -> None:
        while True:
            # Sleep first: processes started together spread out instead of scanning at once.
            await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))
            while await self._scan() == SCAN_BATCH:
                pass  # more may be due: keep going

    async def _scan(self) -> int:
        try:
            return await run_due_alerts(self.stores, self.settings, limit=SCAN_BATCH)
        except Exception:
            log.exception("job alert scan failed; trying again next scan")
            return 0


def start_alert_scheduler(stores: Stores, settings: TaskSettings) -> AlertScheduler:
    """The process's scheduler, running (``tasks.runtime`` starts and stops it)."""
    scheduler = AlertScheduler(stores, settings)
    scheduler.start()
    return scheduler
