"""One process's delivery machinery: senders, the queue, its workers and sweeper, and
the job alert scheduler."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from cache.client import Cache
from sql.db import Database
from tasks.alerts import AlertScheduler, start_alert_scheduler
from tasks.deliver import OutboxDispatcher
from tasks.email import EmailSender
from tasks.fanout import Fanouts
from tasks.feeds import FEED_FANOUT, FeedFanout
from tasks.jobs import JOB_CLOSED, notify_job_closed_batch
from tasks.push import PushSender
from tasks.queue import DeliveryConfig, OutboxQueue
from tasks.settings import TaskSettings
from tasks.work import Stores


@dataclass
class DeliveryRuntime:
    queue: OutboxQueue
    fanouts: Fanouts
    session: aiohttp.ClientSession
    alerts: AlertScheduler
    email: EmailSender


def delivery_config(settings: TaskSettings) -> DeliveryConfig:
    return DeliveryConfig(
        workers=settings.delivery_workers,
        lease_seconds=settings.delivery_lease_seconds,
        sweep_seconds=settings.delivery_sweep_seconds,
        retry_base_seconds=settings.delivery_retry_base_seconds,
        max_attempts=settings.delivery_max_attempts,
    )


def open_stores(settings: TaskSettings, db: Database, cache: Cache) -> Stores:
    """The process's stores; its delivery queue takes wake-ups at once and delivers once
    ``start_deliveries`` has started its workers."""
    return Stores(db, cache, OutboxQueue(db, delivery_config(settings)))


async def start_deliveries(settings: TaskSettings, stores: Stores) -> DeliveryRuntime:
    session = aiohttp.ClientSession()
    fanouts = Fanouts(stores, lease_seconds=settings.delivery_lease_seconds)
    fanouts.register(JOB_CLOSED, notify_job_closed_batch)
    fanouts.register(FEED_FANOUT, FeedFanout(settings.feed_fanout_max_followers,
                                             settings.feed_active_days))
    email = EmailSender(settings)
    stores.queue.start(OutboxDispatcher(settings, stores.db, email, PushSender(settings, session),
                                        fanouts))
    return DeliveryRuntime(stores.queue, fanouts, session,
                           start_alert_scheduler(stores, settings), email)


async def stop_deliveries(deliveries: DeliveryRuntime) -> None:
    await deliveries.alerts.stop()  # it queues emails: stop it before the queue
    await deliveries.queue.stop()
    await deliveries.email.close()
    await deliveries.session.close()
