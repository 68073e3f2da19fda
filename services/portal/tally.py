"""Counting what a client did lately (wrong codes, ratings), in the store, so every portal
instance counts together and a restart forgets nothing.

One inserted document per thing counted (a fresh id is inserted atomically on FerretDB and
MongoDB alike; FerretDB 1.x makes neither ``$inc`` nor a conditional update atomic), counted
over the last window, found by equality on its key (a declared query field: FerretDB serves no
range from an index, so the window is applied to the key's few documents here).
"""

import uuid
from datetime import datetime, timedelta

from services.common.documents import Records
from services.portal.store import Attempt


class Tally:
    def __init__(self, records: Records[Attempt], *, window: timedelta) -> None:
        self.records = records
        self.window = window

    async def add(self, key: str, *, now: datetime) -> None:
        await self.records.insert(uuid.uuid4().hex, Attempt(key=key, at=now))

    async def count(self, key: str, *, now: datetime) -> int:
        since = now - self.window
        return sum(
            1 for attempt in (await self.records.find(key=key)).values() if attempt.at > since
        )

    async def forget(self, *, now: datetime) -> None:
        """Delete what is older than the window (the collection holds little more)."""
        for attempt_id, attempt in (await self.records.find()).items():
            if attempt.at <= now - self.window:
                await self.records.delete(attempt_id)
