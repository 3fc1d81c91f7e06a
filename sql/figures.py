"""Samples of the dashboard's live figures: one row per figure and minute, the last hours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sql.db import Database, Row

KEEP = "2 hours"

# Every worker samples each minute; the first to write the minute wins, the rest write
# nothing (the primary key), so a minute holds one reading however many workers run.
INSERT_SAMPLES = """
    INSERT INTO admin_metric_samples (figure, taken_at, value)
    SELECT figure, %(taken_at)s, value
    FROM unnest(%(figures)s::text[], %(values)s::float8[]) AS s (figure, value)
    ON CONFLICT DO NOTHING
"""
PRUNE = f"DELETE FROM admin_metric_samples WHERE taken_at < now() - interval '{KEEP}'"


async def insert_samples(db: Database, taken_at: datetime,
                         figures: Mapping[str, float]) -> None:
    async with db.transaction("insert_figure_samples") as cur:
        await cur.execute(INSERT_SAMPLES, {"taken_at": taken_at, "figures": list(figures),
                                           "values": list(figures.values())})
        await cur.execute(PRUNE)


# The primary key (figure, taken_at) reads each figure's hour.
SELECT_SINCE = """
    SELECT figure, taken_at, value FROM admin_metric_samples
    WHERE figure = ANY(%(figures)s::text[]) AND taken_at > %(since)s
    ORDER BY figure, taken_at
"""


async def list_samples(db: Database, figures: Sequence[str], since: datetime) -> list[Row]:
    return await db.fetch_all(SELECT_SINCE, {"figures": list(figures), "since": since})
