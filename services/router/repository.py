"""Cases in MongoDB. Every lookup is by ``_id`` (FerretDB pushes only those down).

Whenever writers may race (two router instances, or two handlers of one), the winner is decided
by inserting a new ``_id``, which the store refuses atomically when it exists. A conditional
update is no such guard on FerretDB 1.24: it reads the matching document, then writes the whole
document back by ``_id``, so two writers that both matched ``{"revision": 3}`` would both
"succeed" and one change would be lost.

- ``router_case_revisions``: ``{_id: "<case_id>@<revision>", case}``, one per revision of each
  case. Whoever inserts revision n + 1 first has made the change; the others read the case
  again and recompute theirs.
- ``router_cases``: ``{_id: case_id, revision, case}``, the case at its latest revision,
  rewritten after each revision is inserted. A reader also looks for the revision after it, in
  case a writer stopped in between.
- ``router_parked``: updates for a case that is not open yet (a finding that overtook its
  complaint on another topic), in slots ``{_id: "<case_id>#<n>", event_id, update, done}``
  numbered from 0. A slot is marked done once applied, never removed, so a reader walks the
  slots up to the first free one.
- ``router_events``: which case each opening event went to (opened or linked).
- ``router_related``: the open case per staff member and category, for linking complaints:
  ``{_id: key, case_id}`` for the first, then ``{_id: "<key>><case_id>", case_id}`` for the
  case that replaced that one (once it was closed or too old), and so on.
"""

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.case import CaseUpdated
from services.common.store import Document, retry_transient

T = TypeVar("T")
Parked = dict[str, Any]
"""An update waiting for its case: ``{"kind": …, "event": <event as JSON>}``."""


def _revision_id(case_id: str, revision: int) -> str:
    return f"{case_id}@{revision}"


def _slot_id(case_id: str, slot: int) -> str:
    return f"{case_id}#{slot}"


async def _store(operation: Callable[[], Awaitable[T]]) -> T:
    """Every operation here may be repeated: FerretDB answers "database is locked" when
    writers meet."""
    return await retry_transient(operation)


class CaseRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.cases = db["router_cases"]
        self.revisions = db["router_case_revisions"]
        self.parked_updates = db["router_parked"]
        self.events = db["router_events"]
        self.related = db["router_related"]

    # --- Cases --------------------------------------------------------------------------------

    async def get(self, case_id: str) -> CaseUpdated | None:
        stored = await _find(self.cases, case_id, {"case": 1})
        case = None
        if stored is not None and "case" in stored:
            case = CaseUpdated.model_validate(stored["case"])
        while True:
            revision = 0 if case is None else case.revision
            newer = await _find(self.revisions, _revision_id(case_id, revision + 1))
            if newer is None:
                return case
            case = CaseUpdated.model_validate(newer["case"])

    async def open(self, case: CaseUpdated) -> bool:
        """Store a new case; False if it is already open (a redelivery, another instance)."""
        return await self.save(case)

    async def save(self, case: CaseUpdated) -> bool:
        """Store a change over the revision it was made from; False if another came first."""
        document = case.model_dump(mode="json")
        try:
            await _store(
                lambda: self.revisions.insert_one(
                    {"_id": _revision_id(case.case_id, case.revision), "case": document}
                )
            )
        except DuplicateKeyError:
            return False
        # Filtered by _id alone (FerretDB reads more than the one document for any other
        # filter); a later revision written meanwhile is found again by ``get`` regardless.
        stored = await _find(self.cases, case.case_id, {"revision": 1})
        if stored is None or stored.get("revision", 0) < case.revision:
            with suppress(DuplicateKeyError):  # another writer inserted the document first
                await _store(
                    lambda: self.cases.update_one(
                        {"_id": case.case_id},
                        {"$set": {"revision": case.revision, "case": document}},
                        upsert=True,
                    )
                )
        return True

    # --- Updates waiting for their case -------------------------------------------------------

    async def park(self, case_id: str, event_id: str, update: Parked) -> bool:
        """Keep an update until its case opens; False if the case is open by now (the caller
        then applies the update itself)."""
        slot = 0
        while True:
            slot_id = _slot_id(case_id, slot)
            waiting = {"_id": slot_id, "event_id": event_id, "update": update, "done": False}
            try:
                await _store(functools.partial(self.parked_updates.insert_one, waiting))
                break
            except DuplicateKeyError:
                taken = await _find(self.parked_updates, slot_id)
                if taken is not None and taken["event_id"] == event_id:
                    break  # parked already (a redelivery)
                slot += 1
        # The case may have opened while this was parked, after its opener looked for updates.
        if await self.get(case_id) is None:
            return True
        await self._mark_done(slot_id)
        return False

    async def parked(self, case_id: str) -> dict[str, Parked]:
        """The updates waiting for the case, by event id."""
        return {
            slot["event_id"]: slot["update"]
            async for slot in self._slots(case_id)
            if not slot["done"]
        }

    async def unpark(self, case_id: str, event_ids: list[str]) -> None:
        async for slot in self._slots(case_id):
            if slot["event_id"] in event_ids and not slot["done"]:
                await self._mark_done(slot["_id"])

    async def _slots(self, case_id: str) -> AsyncIterator[Document]:
        slot = 0
        while (found := await _find(self.parked_updates, _slot_id(case_id, slot))) is not None:
            yield found
            slot += 1

    async def _mark_done(self, slot_id: str) -> None:
        await _store(
            lambda: self.parked_updates.update_one(
                {"_id": slot_id}, {"$set": {"done": True}, "$unset": {"update": ""}}
            )
        )

    # --- Opening events -----------------------------------------------------------------------

    async def case_of_event(self, event_id: str) -> str | None:
        stored = await _find(self.events, event_id)
        return None if stored is None else str(stored["case_id"])

    async def remember_event(self, event_id: str, case_id: str) -> None:
        with suppress(DuplicateKeyError):  # remembered already: the first one stays
            await _store(lambda: self.events.insert_one({"_id": event_id, "case_id": case_id}))

    # --- Related complaints -------------------------------------------------------------------

    async def related_case(self, key: str) -> str | None:
        stored = await _find(self.related, key)
        case_id = None if stored is None else str(stored["case_id"])
        while case_id is not None:
            successor = await _find(self.related, f"{key}>{case_id}")
            if successor is None:
                return case_id
            case_id = str(successor["case_id"])
        return None

    async def claim_related(self, key: str, case_id: str, *, replacing: str | None) -> bool:
        """Make ``case_id`` the open case for ``key``, if the current one is still
        ``replacing``; False if another instance changed it first."""
        if replacing is not None and await self.related_case(key) != replacing:
            return False
        claim = key if replacing is None else f"{key}>{replacing}"
        try:
            await _store(lambda: self.related.insert_one({"_id": claim, "case_id": case_id}))
        except DuplicateKeyError:
            return False
        return True


async def _find(
    collection: AsyncCollection[Document], _id: str, projection: dict[str, int] | None = None
) -> Document | None:
    return await _store(lambda: collection.find_one({"_id": _id}, projection))
