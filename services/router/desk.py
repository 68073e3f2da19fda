"""The router's desk: applies the domain's changes to stored cases, safely under redelivery,
replay and a second router instance.

- Idempotent: an event that already changed a case changes nothing again; the case is
  returned as it stands so that it can be published again.
- Concurrent: a change is saved only over the revision it was computed from; on a conflict the
  case is read again and the change recomputed.
- Order-free across topics: an update for a case that is not open yet waits (parked) and is
  applied when the case opens.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.case import CaseUpdated, HistoryEntry, derive_case_id
from schemas.case_action import CaseActionReceived
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from services.router import domain
from services.router.domain import Opening, Routing
from services.router.repository import CaseRepository

ATTEMPTS = 20
"""Conflicts in a row before giving up; the message is then redelivered later."""


class CaseBusyError(RuntimeError):
    """Other router instances kept changing the case; the delivery is retried."""


@dataclass(frozen=True)
class Outcome:
    case: CaseUpdated | None
    """The case as it now stands; None when the update waits for its case to open."""
    new_entries: tuple[HistoryEntry, ...] = ()
    """What this delivery added to the history (empty for a redelivery)."""


Update = InvestigationFindingReceived | CaseActionReceived | ReporterAddition | ReporterReply


class CaseDesk:
    def __init__(self, cases: CaseRepository, routing: Routing) -> None:
        self.cases = cases
        self.routing = routing
        self._appliers: dict[str, Callable[..., CaseUpdated]] = {
            "finding": domain.record_finding,
            "case_action": self._take_action,
            "reporter_addition": domain.add_reporter_information,
            "reporter_reply": domain.note_reply,
        }

    def _take_action(
        self, case: CaseUpdated, action: CaseActionReceived, *, now: datetime
    ) -> CaseUpdated:
        return domain.take_action(case, action, self.routing, now=now)

    # --- Opening ------------------------------------------------------------------------------

    async def open_or_link(self, opening: Opening, *, now: datetime) -> Outcome:
        """Open the case an event starts, or link it to an open related case."""
        event_id = str(opening.source_event_id)
        stub_id = derive_case_id(opening.source_event_id)
        known = await self.cases.case_of_event(event_id)
        if known is not None:
            case = await self.cases.get(known)
            if case is None:
                raise LookupError(f"case {known} of event {event_id} is not stored")
            # Also after a crash between remembering the event and applying what waited.
            return Outcome(await self._apply_parked(case, stub_id, now=now))
        case = await self.cases.get(opening.case_id)
        added = case is None
        if case is None:
            case = await self._open_or_link(opening, now=now)
        new_entries = tuple(
            entry
            for entry in case.history
            if added and entry.source_event_id == opening.source_event_id
        )
        # Remembered before looking at what waited: a reporter's addition parked meanwhile
        # under the complaint's own case id then finds the case it was linked to.
        await self.cases.remember_event(event_id, case.case_id)
        case = await self._apply_parked(case, stub_id, now=now)
        return Outcome(case, new_entries)

    async def _open_or_link(self, opening: Opening, *, now: datetime) -> CaseUpdated:
        key = opening.related_key
        for attempt in range(ATTEMPTS):
            current_id = None if key is None else await self.cases.related_case(key)
            if key is not None and current_id not in (None, opening.case_id):
                current = await self.cases.get(str(current_id))
                if current is None:
                    # Another instance claimed the key and is opening its case right now.
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
                if domain.has_applied(current, opening.source_event_id):
                    return current
                if domain.is_related(current, opening, self.routing):
                    linked = domain.link(current, opening, now=now)
                    if await self.cases.save(linked):
                        return linked
                    continue
            claimed = (
                key is None
                or current_id == opening.case_id
                or await self.cases.claim_related(key, opening.case_id, replacing=current_id)
            )
            if not claimed:
                continue
            case = domain.open_case(opening, self.routing, now=now)
            if await self.cases.open(case):
                return case
            stored = await self.cases.get(case.case_id)
            if stored is not None:
                return stored
        raise CaseBusyError(f"could not open or link a case for event {opening.source_event_id}")

    async def _apply_parked(self, case: CaseUpdated, stub_id: str, *, now: datetime) -> CaseUpdated:
        parked = await self.cases.parked(stub_id)
        for _, update in sorted(
            parked.items(), key=lambda item: datetime.fromisoformat(item[1]["at"])
        ):
            kind = update["kind"]
            event = _MODELS[kind].model_validate(update["event"])
            outcome = await self._change(
                case.case_id, event, self._appliers[kind], now=now, may_park=False
            )
            case = outcome.case or case
        await self.cases.unpark(stub_id, list(parked))
        return case

    # --- Changes ------------------------------------------------------------------------------

    async def record(self, update: Update, *, now: datetime) -> Outcome:
        """Apply a finding, an action or a reporter's message to its case."""
        apply = self._appliers[_KINDS[type(update)]]
        if isinstance(update, ReporterAddition):
            return await self._record_addition(update, apply, now=now)
        return await self._change(update.case_id, update, apply, now=now, may_park=True)

    async def _record_addition(
        self, addition: ReporterAddition, apply: Callable[..., CaseUpdated], *, now: datetime
    ) -> Outcome:
        # The reporter knows their complaint, not the case it went to (it may have been linked).
        complaint_id = str(addition.complaint_event_id)
        case_id = await self.cases.case_of_event(complaint_id)
        if case_id is not None:
            return await self._change(case_id, addition, apply, now=now, may_park=False)
        stub_id = derive_case_id(addition.complaint_event_id)
        outcome = await self._change(stub_id, addition, apply, now=now, may_park=True)
        # The complaint may have been linked to another case while this was being parked.
        case_id = await self.cases.case_of_event(complaint_id)
        if outcome.case is None and case_id is not None and case_id != stub_id:
            case = await self.cases.get(case_id)
            if case is not None:
                return Outcome(await self._apply_parked(case, stub_id, now=now))
        return outcome

    async def _change(
        self,
        case_id: str,
        event: Update,
        apply: Callable[..., CaseUpdated],
        *,
        now: datetime,
        may_park: bool,
    ) -> Outcome:
        for _ in range(ATTEMPTS):
            case = await self.cases.get(case_id)
            if case is None:
                if not may_park:
                    raise LookupError(f"case {case_id} is not open")
                if await self.cases.park(case_id, str(event.event_id), _parked(event)):
                    return Outcome(None)
                continue
            if domain.has_applied(case, event.event_id):
                return Outcome(case)
            changed = apply(case, event, now=now)
            if await self.cases.save(changed):
                return Outcome(changed, changed.history[len(case.history) :])
        raise CaseBusyError(f"case {case_id} kept changing; event {event.event_id} is retried")


_MODELS: dict[str, type[Update]] = {
    "finding": InvestigationFindingReceived,
    "case_action": CaseActionReceived,
    "reporter_addition": ReporterAddition,
    "reporter_reply": ReporterReply,
}
_KINDS = {model: kind for kind, model in _MODELS.items()}


def _happened_at(event: Update) -> datetime:
    if isinstance(event, ReporterAddition):
        return event.received_at
    if isinstance(event, ReporterReply):
        return event.sent_at
    return event.occurred_at


def _parked(event: Update) -> dict[str, Any]:
    return {
        "kind": _KINDS[type(event)],
        "at": _happened_at(event).isoformat(),
        "event": event.model_dump(mode="json"),
    }
