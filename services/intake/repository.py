"""Intake's own state in MongoDB: accepted events (for idempotency), follow-ups, API keys."""

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import uuid4

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.store import BULK_CHUNK, Document, retry_transient

T = TypeVar("T")
_DUPLICATE_KEY = 11000


class IntakeStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.events = db["intake_events"]
        self.follow_ups = db["intake_follow_ups"]
        self.follow_up_codes = db["intake_follow_up_codes"]
        self.cases = db["intake_cases"]
        self.wrong_codes = db["intake_wrong_follow_up_codes"]
        self.api_keys = db["intake_api_keys"]
        self._write_lock = asyncio.Lock()

    async def _write(self, operation: Callable[[], Awaitable[T]]) -> T:
        """One write at a time from this process: FerretDB's SQLite backend has one writer,
        and writers that meet there wait in SQLite's coarse busy sleeps."""
        async with self._write_lock:
            return await retry_transient(operation)

    async def ensure_indexes(self) -> None:
        """Every lookup is by _id (FerretDB pushes only those down), but for counting wrong
        follow-up codes: MongoDB counts them on this index; FerretDB reads the collection,
        which holds only the last window's wrong codes."""
        await self.wrong_codes.create_index([("key", 1), ("at", 1)])

    # Accepted events --------------------------------------------------------------------

    async def insert_pending(self, records: list[Document]) -> set[str]:
        """Insert records keyed by event id; returns the ids that already existed."""
        if not records:
            return set()

        async def insert() -> set[str]:
            try:
                await self.events.insert_many(records, ordered=False)
            except BulkWriteError as error:
                details: Any = error.details
                if any(e["code"] != _DUPLICATE_KEY for e in details["writeErrors"]):
                    raise
                return {records[e["index"]]["_id"] for e in details["writeErrors"]}
            return set()

        return await self._write(insert)

    # Every query names one _id: FerretDB pushes _id equality down to SQLite, not $in.

    async def find(self, event_ids: set[str]) -> dict[str, Document]:
        async def find_one(event_id: str) -> Document | None:
            return await retry_transient(lambda: self.events.find_one({"_id": event_id}))

        found = await asyncio.gather(*(find_one(event_id) for event_id in event_ids))
        return {doc["_id"]: doc for doc in found if doc is not None}

    async def mark_published(self, event_ids: list[str], *, at: datetime) -> None:
        for start in range(0, len(event_ids), BULK_CHUNK):
            updates = [
                UpdateOne({"_id": event_id}, {"$set": {"published_at": at}})
                for event_id in event_ids[start : start + BULK_CHUNK]
            ]
            await self._write(functools.partial(self.events.bulk_write, updates, ordered=False))

    # Follow-ups ----------------------------------------------------------------------------

    # A follow-up is keyed by the complaint's event id; its code and its case find it by _id.

    async def open_follow_up(self, *, code_digest: str, event_id: str, at: datetime) -> None:
        await self._write(
            lambda: self.follow_up_codes.update_one(
                {"_id": code_digest}, {"$setOnInsert": {"event_id": event_id}}, upsert=True
            )
        )
        await self._write(
            lambda: self.follow_ups.update_one(
                {"_id": event_id},
                # No empty arrays here: FerretDB 1.24 drops them from $setOnInsert; $push
                # creates "replies" and "additions" when the first one comes.
                {"$setOnInsert": {"status": "received", "updated_at": at}},
                upsert=True,
            )
        )

    async def follow_up(self, code_digest: str) -> Document | None:
        code = await self.follow_up_codes.find_one({"_id": code_digest})
        return None if code is None else await self.follow_ups.find_one({"_id": code["event_id"]})

    async def set_follow_up_status(
        self, *, event_id: str, status: str, case_id: str, revision: int, at: datetime
    ) -> None:
        """Show a complaint's reporter the state of its case, as of the case's latest revision.

        Only complaints have a follow-up; for any other event this changes nothing.
        """
        newer = {
            "$or": [{"case_revision": {"$exists": False}}, {"case_revision": {"$lt": revision}}]
        }
        await self._write(
            lambda: self.follow_ups.update_one(
                {"_id": event_id, **newer},
                {
                    "$set": {
                        "status": status,
                        "case_id": case_id,
                        "case_revision": revision,
                        "updated_at": at,
                    }
                },
            )
        )
        if await self.follow_ups.find_one({"_id": event_id}, {"_id": 1}):
            # Replies go to the reporter of the complaint that opened the case.
            await self._write(
                lambda: self.cases.update_one(
                    {"_id": case_id}, {"$setOnInsert": {"event_id": event_id}}, upsert=True
                )
            )

    async def complaint_of_case(self, case_id: str) -> str | None:
        """The event id of the complaint a case was opened for, once intake has seen it routed."""
        case = await self.cases.find_one({"_id": case_id})
        return None if case is None else str(case["event_id"])

    async def add_reply(self, *, event_id: str, reply: Document) -> None:
        """A message from the conduct office to the reporter; a repeat of one is kept once."""
        await self._write(
            lambda: self.follow_ups.update_one(
                {"_id": event_id, "replies.event_id": {"$ne": reply["event_id"]}},
                {"$push": {"replies": reply}, "$set": {"updated_at": reply["at"]}},
            )
        )

    async def add_addition(self, *, event_id: str, addition: Document) -> None:
        await self._write(
            lambda: self.follow_ups.update_one(
                {"_id": event_id}, {"$push": {"additions": addition}}
            )
        )

    # Wrong follow-up codes ---------------------------------------------------------------------

    async def add_wrong_code(self, key: str, *, at: datetime, forget_before: datetime) -> None:
        """One document per wrong code, with an _id of its own: inserted atomically on both
        stores, where a counter's $inc is not (FerretDB). Those older than ``forget_before``
        go."""
        attempt = {"_id": uuid4().hex, "key": key, "at": at}

        async def insert() -> None:
            # DuplicateKeyError: an earlier try was written and its answer lost.
            with contextlib.suppress(DuplicateKeyError):
                await self.wrong_codes.insert_one(attempt)

        await self._write(insert)
        await self._write(lambda: self.wrong_codes.delete_many({"at": {"$lte": forget_before}}))

    async def wrong_codes_since(self, key: str, *, since: datetime) -> int:
        return await retry_transient(
            lambda: self.wrong_codes.count_documents({"key": key, "at": {"$gt": since}})
        )

    # API keys ------------------------------------------------------------------------------

    async def create_api_key(self, record: Document) -> None:
        await self.api_keys.insert_one(record)

    async def api_key(self, key_id: str) -> Document | None:
        return await self.api_keys.find_one({"_id": key_id})

    async def list_api_keys(self) -> list[Document]:
        return [doc async for doc in self.api_keys.find({}, {"secret_digest": 0}).sort("_id")]

    async def revoke_api_key(self, key_id: str, *, at: datetime) -> bool:
        result = await self.api_keys.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
        )
        return result.modified_count == 1
