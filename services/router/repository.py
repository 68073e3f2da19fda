"""Cases in MongoDB. Every lookup is by ``_id`` (FerretDB pushes only those down).

- ``router_cases``: one document per case, ``{_id: case_id, revision, case}``. A change is
  written only over the revision it was computed from, so two router instances never lose
  each other's changes. Updates for a case that is not open yet (a finding that overtook its
  complaint on another topic) wait in ``parked`` on a placeholder of revision 0.
- ``router_events``: which case each opening event went to (opened or linked).
- ``router_related``: the open case per staff member and category, for linking complaints.
"""

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.case import CaseUpdated
from services.common.store import Document

Parked = dict[str, Any]
"""An update waiting for its case: ``{"kind": …, "event": <event as JSON>}``."""


class CaseRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.cases = db["router_cases"]
        self.events = db["router_events"]
        self.related = db["router_related"]

    async def get(self, case_id: str) -> CaseUpdated | None:
        stored = await self.cases.find_one({"_id": case_id}, {"case": 1})
        if stored is None or "case" not in stored:
            return None
        return CaseUpdated.model_validate(stored["case"])

    async def open(self, case: CaseUpdated) -> bool:
        """Store a new case; False if it is already open (a redelivery)."""
        try:
            await self.cases.update_one(
                {"_id": case.case_id, "revision": 0},
                {"$set": {"revision": case.revision, "case": case.model_dump(mode="json")}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def save(self, case: CaseUpdated) -> bool:
        """Store a change over the revision it was made from; False if another came first."""
        result = await self.cases.update_one(
            {"_id": case.case_id, "revision": case.revision - 1},
            {"$set": {"revision": case.revision, "case": case.model_dump(mode="json")}},
        )
        return result.matched_count == 1

    async def park(self, case_id: str, event_id: str, update: Parked) -> bool:
        """Keep an update until its case opens; False if the case is open by now."""
        try:
            await self.cases.update_one(
                {"_id": case_id, "revision": 0},
                {"$set": {f"parked.{event_id}": update}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def parked(self, case_id: str) -> dict[str, Parked]:
        stored = await self.cases.find_one({"_id": case_id}, {"parked": 1})
        return dict(stored.get("parked", {})) if stored else {}

    async def unpark(self, case_id: str, event_ids: list[str]) -> None:
        if event_ids:
            await self.cases.update_one(
                {"_id": case_id}, {"$unset": {f"parked.{event_id}": "" for event_id in event_ids}}
            )

    async def case_of_event(self, event_id: str) -> str | None:
        stored = await self.events.find_one({"_id": event_id})
        return None if stored is None else str(stored["case_id"])

    async def remember_event(self, event_id: str, case_id: str) -> None:
        await self.events.update_one(
            {"_id": event_id}, {"$setOnInsert": {"case_id": case_id}}, upsert=True
        )

    async def related_case(self, key: str) -> str | None:
        stored = await self.related.find_one({"_id": key})
        return None if stored is None else str(stored["case_id"])

    async def claim_related(self, key: str, case_id: str, *, replacing: str | None) -> bool:
        """Make ``case_id`` the open case for ``key``, if the current one is still
        ``replacing``; False if another instance changed it first."""
        if replacing is None:
            try:
                await self.related.insert_one({"_id": key, "case_id": case_id})
            except DuplicateKeyError:
                return False
            return True
        result = await self.related.update_one(
            {"_id": key, "case_id": replacing}, {"$set": {"case_id": case_id}}
        )
        return result.matched_count == 1
