"""Browser push subscriptions."""

from __future__ import annotations

from sql.db import Database, Row

# Upsert by endpoint: an endpoint registered by another account moves to this one.
UPSERT_SUBSCRIPTION = """
    INSERT INTO push_subscriptions AS s (user_id, endpoint, p256dh, auth)
    VALUES (%(user_id)s, %(endpoint)s, %(p256dh)s, %(auth)s)
    ON CONFLICT (endpoint) DO UPDATE
        SET user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
            updated_at = now()
    RETURNING id, (xmax = 0) AS created
"""


async def upsert_subscription(db: Database, user_id: int, endpoint: str, p256dh: str,
                              auth: str) -> bool:
    """Store the subscription; True when it is new (201), False when it existed (200)."""
    async with db.transaction("upsert_push_subscription") as cur:
        row = await cur.fetch_one(UPSERT_SUBSCRIPTION, {
            "user_id": user_id, "endpoint": endpoint, "p256dh": p256dh, "auth": auth})
    assert row is not None
    return bool(row["created"])


DELETE_OWN_SUBSCRIPTION = """
    DELETE FROM push_subscriptions WHERE endpoint = %(endpoint)s AND user_id = %(user_id)s
"""


async def delete_own_subscription(db: Database, user_id: int, endpoint: str) -> None:
    await db.execute(DELETE_OWN_SUBSCRIPTION, {"user_id": user_id, "endpoint": endpoint})


SELECT_SUBSCRIPTION = """
    SELECT id, user_id, endpoint, p256dh, auth FROM push_subscriptions WHERE id = %(id)s
"""


async def get_subscription(db: Database, subscription_id: int) -> Row | None:
    return await db.fetch_one(SELECT_SUBSCRIPTION, {"id": subscription_id})


DELETE_SUBSCRIPTION = "DELETE FROM push_subscriptions WHERE id = %(id)s"


async def delete_subscription(db: Database, subscription_id: int) -> None:
    """The push service said the subscription is gone (404/410)."""
    await db.execute(DELETE_SUBSCRIPTION, {"id": subscription_id})
