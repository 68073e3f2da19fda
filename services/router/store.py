"""What the router keeps, declared once on the store adapter (services/common/documents.py).

- ``cases``: each case at its latest revision, changed only over the revision it was read at
  (versioned: the adapter's revision guard decides between two router instances).
- ``events``: which case each opening event (a complaint, a lead) went to, opened or linked;
  inserted once, after the case was saved, so a known event's case is always stored.
- ``claims``: which case holds each related key (one staff member, one category) for linking.
  A claim names the case it replaces, and its id is the key and that case, so the store's
  first-writer-wins insert lets one instance only replace a given holder (a conditional update
  would be no guard on FerretDB 1.24); the holder is the claimed case that no claim replaces,
  found among the key's claims by the query field ``key``. A claim carries its case as its
  claimer is about to save it, so that another instance that finds the case missing saves it
  instead of waiting.
- ``waiting``: updates that arrived before their case opened (a finding that overtook its
  complaint on another topic), under the event's id, found by the case id they wait for.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

from pydantic import BaseModel, ConfigDict

from schemas.case import CaseUpdated
from services.common.documents import Documents, Records, VersionedRecords
from services.router.domain import Update


class Stored(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventCase(Stored):
    """The case an opening event went to."""

    case_id: str


class RelatedClaim(Stored):
    """``case`` holds ``key`` after the case ``replaces`` (None: the key's first case)."""

    key: str
    replaces: str | None
    case: CaseUpdated

    @property
    def claim_id(self) -> str:
        return f"{self.key}>{self.replaces or ''}"


class WaitingUpdate(Stored):
    """An update waiting for the case ``case_id`` to open."""

    case_id: str
    update: Update


def holder(claims: Iterable[RelatedClaim]) -> RelatedClaim | None:
    """The claim of the case that holds the key now: the one no other claim replaced."""
    claimed = list(claims)
    replaced = {claim.replaces for claim in claimed}
    return next((claim for claim in claimed if claim.case.case_id not in replaced), None)


@dataclass(frozen=True)
class CaseStore:
    cases: VersionedRecords[CaseUpdated]
    events: Records[EventCase]
    claims: Records[RelatedClaim]
    waiting: Records[WaitingUpdate]

    @classmethod
    def on(cls, documents: Documents) -> Self:
        # New names: the documents before the store adapter had another layout.
        return cls(
            cases=documents.versioned("router_stored_cases", CaseUpdated),
            events=documents.records("router_opening_events", EventCase),
            claims=documents.records("router_related_claims", RelatedClaim, fields=("key",)),
            waiting=documents.records("router_waiting_updates", WaitingUpdate, fields=("case_id",)),
        )
