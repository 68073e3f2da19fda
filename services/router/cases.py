"""The router's cases on the store: load → domain → save, a batch of events at a time.

- Idempotent: an event that already changed a case changes nothing again; the case is given
  back as it stands, to be published again (a crash after saving must not lose it).
- Concurrent: a change is saved only over the revision it was computed from; when another
  router instance saved first, the change is made again to what it saved (the adapter's
  ``update``). Opening a case for a related key is first claimed (first writer wins).
- In batches: what a batch needs is read at once (``get_many``, ``load_many``, one ``find`` per
  related key), the events of one case are applied in their order to the case as loaded and
  saved once, and different cases are written side by side.
- Order-free across topics: an update for a case not open yet waits, and is applied when the
  case opens.
"""

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from schemas.case import CaseChange, CaseUpdated, HistoryEntry, derive_case_id
from schemas.follow_up import ReporterAddition
from services.common.documents import UPDATE_ATTEMPTS, StoreBusyError, Versioned
from services.router import domain
from services.router.domain import Opening, Update
from services.router.routing import Routing
from services.router.store import CaseStore, EventCase, RelatedClaim, WaitingUpdate, holder

Loaded = Versioned[CaseUpdated]


@dataclass(frozen=True)
class Written:
    """A case as it was read and as it was saved (the same object: nothing changed)."""

    before: CaseUpdated | None
    after: CaseUpdated

    @property
    def new_entries(self) -> tuple[HistoryEntry, ...]:
        return self.after.history[0 if self.before is None else len(self.before.history) :]


@dataclass
class Applied:
    """What a batch of events did: the cases they are in as they now stand (to publish),
    the changes saved, and how many updates wait for a case that is not open yet."""

    cases: dict[str, CaseUpdated] = field(default_factory=dict)
    written: list[Written] = field(default_factory=list)
    waiting: int = 0

    def add(self, *written: Written) -> None:
        for one in written:
            if one.after is not one.before:
                self.written.append(one)
            known = self.cases.get(one.after.case_id)
            if known is None or one.after.revision > known.revision:
                self.cases[one.after.case_id] = one.after

    @property
    def new_entries(self) -> list[HistoryEntry]:
        return [entry for one in self.written for entry in one.new_entries]

    def opened(self) -> list[CaseUpdated]:
        """The cases the batch opened, as they now stand."""
        return [
            self.cases[one.after.case_id]
            for one in self.written
            if any(entry.change is CaseChange.OPENED for entry in one.new_entries)
        ]

    def routed(self) -> set[uuid.UUID]:
        """The opening events the batch opened or linked a case for."""
        placing = (CaseChange.OPENED, CaseChange.LINKED)
        return {entry.source_event_id for entry in self.new_entries if entry.change in placing}


class Cases:
    def __init__(self, store: CaseStore, routing: Routing) -> None:
        self.store = store
        self.routing = routing

    # --- Opening ------------------------------------------------------------------------------

    async def open_or_link(self, openings: Sequence[Opening], *, now: datetime) -> Applied:
        """Open the case each event starts, or link it to an open related case."""
        applied = Applied()
        known = await self.store.events.get_many(str(o.source_event_id) for o in openings)
        new = [o for o in openings if str(o.source_event_id) not in known]
        for lane in await asyncio.gather(*(self._place(lane, now=now) for lane in _lanes(new))):
            applied.add(*lane)
        went = _case_of_each(new, applied.cases.values())
        # Remembered once their cases are saved, and before looking at what waits for them:
        # an addition waiting under a linked complaint's own case id then finds its case.
        await self.store.events.insert_many({str(e): EventCase(case_id=c) for e, c in went.items()})
        stored = await self.store.cases.load_many(case.case_id for case in known.values())
        applied.add(*(Written(case, case) for case in map(_value, stored.values())))
        went |= {uuid.UUID(event_id): case.case_id for event_id, case in known.items()}
        # Also after a crash between remembering the event and applying what waited.
        released = {derive_case_id(event_id): case_id for event_id, case_id in went.items()}
        applied.add(*await self._release(released, now=now))
        return applied

    async def _place(self, lane: list[Opening], *, now: datetime) -> list[Written]:
        """Open or link the openings of one lane; again from what is stored when another
        instance wrote first."""
        key, pending, written = lane[0].related_key, lane, list[Written]()
        for _ in range(UPDATE_ATTEMPTS):
            current, seen = await (self._held(key, lane) if key else self._own(lane[0]))
            written += _concerning(seen, lane)
            pending = _unplaced(pending, written)
            if not pending:
                return written
            held = None if current is None else current.value
            cases = domain.place(held, pending, self.routing, now=now)
            written += await self._write(key, current, cases)
            pending = _unplaced(pending, written)
            if not pending:
                return written
        raise StoreBusyError(f"could not open or link a case for {pending[0].source_event_id}")

    async def _own(self, opening: Opening) -> tuple[Loaded | None, list[Written]]:
        """The case an opening without a related key opens, if it is stored already."""
        own = await self.store.cases.load(opening.case_id)
        if own.value is None:
            return None, []
        return own, [Written(own.value, own.value)]

    async def _held(self, key: str, lane: list[Opening]) -> tuple[Loaded | None, list[Written]]:
        """The case holding ``key``, and the cases stored for the lane's openings before."""
        claims = (await self.store.claims.find(key=key)).values()
        current = holder(claims)
        if current is None:
            return None, []
        claimed = {claim.case.case_id for claim in claims} - {current.case.case_id}
        # A case one of them opened, no longer the holder: it stopped before it was remembered.
        earlier = await self.store.cases.load_many(claimed & {o.case_id for o in lane})
        seen = [Written(case, case) for case in map(_value, earlier.values())]
        loaded = await self.store.cases.load(current.case.case_id)
        if loaded.value is None:
            # Claimed, not saved yet (its claimer is at it, or stopped): saved as it would have.
            if await self.store.cases.save(current.case.case_id, current.case, over=0):
                seen.append(Written(None, current.case))
            loaded = await self.store.cases.load(current.case.case_id)
        return loaded, [*seen, Written(_value(loaded), _value(loaded))]

    async def _write(
        self, key: str | None, current: Loaded | None, cases: list[CaseUpdated]
    ) -> list[Written]:
        """Save the cases a lane's openings leave, in order (``domain.place``); stop at the
        first that another instance changed first. What was saved."""
        written: list[Written] = []
        replaces = None
        if current is not None:
            first, *cases = cases
            if first is not current.value:
                if not await self.store.cases.save(current.key, first, over=current.revision):
                    return written
                written.append(Written(current.value, first))
            replaces = current.key
        for case in cases:
            claim = None if key is None else RelatedClaim(key=key, replaces=replaces, case=case)
            if claim is not None and not await self.store.claims.insert(claim.claim_id, claim):
                return written
            if not await self.store.cases.save(case.case_id, case, over=0):
                return written
            written.append(Written(None, case))
            replaces = case.case_id
        return written

    # --- Changes ------------------------------------------------------------------------------

    async def record(self, updates: Sequence[Update], *, now: datetime) -> Applied:
        """Apply findings, actions and reporters' messages to their cases, or let them wait."""
        targets = await self._targets(updates)
        by_case: dict[str, list[Update]] = defaultdict(list)
        for update in updates:
            by_case[targets[update.event_id]].append(update)
        loaded = await self.store.cases.load_many(by_case)
        open_ = {c: ups for c, ups in by_case.items() if loaded[c].value is not None}
        waiting = {c: ups for c, ups in by_case.items() if c not in open_}
        applied = Applied()
        applied.add(*await self._apply_after_held(loaded, open_, now=now))
        if waiting:
            released, applied.waiting = await self._wait(waiting, now=now)
            applied.add(*released)
        return applied

    async def _apply_after_held(
        self, loaded: Mapping[str, Loaded], updates: Mapping[str, list[Update]], *, now: datetime
    ) -> list[Written]:
        """Apply updates to their open cases, each after what still waits under its case id:
        the case's opener may be applying that too, and it came first (applied twice, an
        update changes nothing the second time)."""
        held = await asyncio.gather(*(self.store.waiting.find(case_id=c) for c in updates))
        earlier = {
            case_id: sorted((kept.update for kept in waiting.values()), key=_order)
            for case_id, waiting in zip(updates, held, strict=True)
        }
        written = await asyncio.gather(
            *(self._apply(loaded[c], [*earlier[c], *ups], now=now) for c, ups in updates.items())
        )
        await asyncio.gather(*(self.store.waiting.delete(e) for w in held for e in w))
        return list(written)

    async def _targets(self, updates: Sequence[Update]) -> dict[uuid.UUID, str]:
        """The case id each update is for."""
        complaints = [u.complaint_event_id for u in updates if isinstance(u, ReporterAddition)]
        known = await self.store.events.get_many(map(str, complaints)) if complaints else {}
        return {update.event_id: _target(update, known) for update in updates}

    async def _wait(
        self, waiting: Mapping[str, list[Update]], *, now: datetime
    ) -> tuple[list[Written], int]:
        """Keep updates until their cases open; what was applied, and how many still wait."""
        await self.store.waiting.insert_many(
            {
                str(update.event_id): WaitingUpdate(case_id=case_id, update=update)
                for case_id, updates in waiting.items()
                for update in updates
            }
        )
        # Their case may have opened meanwhile, after its opener looked for what waits for it.
        opened = await self._opened(waiting)
        released = await self._release(opened, now=now)
        return released, sum(len(ups) for c, ups in waiting.items() if c not in opened)

    async def _opened(self, waiting: Mapping[str, list[Update]]) -> dict[str, str]:
        """Of the case ids updates wait for, those open by now, with the case they went to."""
        loaded = await self.store.cases.load_many(waiting)
        opened = {case_id: case_id for case_id, case in loaded.items() if case.value is not None}
        complaints = {
            derive_case_id(u.complaint_event_id): str(u.complaint_event_id)
            for updates in waiting.values()
            for u in updates
            if isinstance(u, ReporterAddition)
        }
        known = await self.store.events.get_many(complaints.values()) if complaints else {}
        for case_id, complaint in complaints.items():
            if complaint in known:
                opened.setdefault(case_id, known[complaint].case_id)
        return opened

    async def _release(self, went: Mapping[str, str], *, now: datetime) -> list[Written]:
        """Apply what waits under each case id to the case it went to, in the order it
        happened, and let it wait no more."""
        found = await asyncio.gather(*(self.store.waiting.find(case_id=c) for c in went))
        updates: dict[str, dict[str, Update]] = defaultdict(dict)
        for case_id, waiting in zip(went.values(), found, strict=True):
            for event_id, kept in waiting.items():
                updates[case_id][event_id] = kept.update
        if not updates:
            return []
        loaded = await self.store.cases.load_many(updates)
        written = await asyncio.gather(
            *(
                self._apply(loaded[case_id], sorted(ups.values(), key=_order), now=now)
                for case_id, ups in updates.items()
            )
        )
        await asyncio.gather(
            *(self.store.waiting.delete(e) for ups in updates.values() for e in ups)
        )
        return list(written)

    async def _apply(self, loaded: Loaded, updates: Sequence[Update], *, now: datetime) -> Written:
        def change(case: CaseUpdated) -> CaseUpdated:
            for update in updates:
                case = domain.apply(case, update, self.routing, now=now)
            return case

        return await self._save(loaded, change)

    async def _save(self, loaded: Loaded, change: Callable[[CaseUpdated], CaseUpdated]) -> Written:
        """Save ``change`` of the case as loaded; if another writer saved first, the adapter
        reads it again and the change is made to what it saved."""
        before = _value(loaded)
        after = change(before)
        if after is before or await self.store.cases.save(loaded.key, after, over=loaded.revision):
            return Written(before, after)
        bases: list[CaseUpdated] = []

        async def again(current: Loaded) -> CaseUpdated | None:
            bases.append(_value(current))
            changed = change(bases[-1])
            return None if changed is bases[-1] else changed

        latest = await self.store.cases.update(loaded.key, again)
        return Written(bases[-1], _value(latest))


def _lanes(openings: Sequence[Opening]) -> list[list[Opening]]:
    """Openings that may go to one case, in their order, each event once: those of one related
    key; any other alone."""
    lanes: dict[str, dict[uuid.UUID, Opening]] = defaultdict(dict)
    for opening in openings:
        lanes[opening.related_key or opening.case_id].setdefault(opening.source_event_id, opening)
    return [list(lane.values()) for lane in lanes.values()]


def _concerning(seen: Iterable[Written], lane: Sequence[Opening]) -> list[Written]:
    """Of the cases read for a lane, those it saved or that hold one of its openings."""
    return [
        one
        for one in seen
        if one.after is not one.before
        or any(domain.has_applied(one.after, o.source_event_id) for o in lane)
    ]


def _unplaced(openings: Sequence[Opening], written: Iterable[Written]) -> list[Opening]:
    cases = [one.after for one in written]
    return [o for o in openings if not any(domain.has_applied(c, o.source_event_id) for c in cases)]


def _case_of_each(
    openings: Sequence[Opening], cases: Iterable[CaseUpdated]
) -> dict[uuid.UUID, str]:
    placed = {entry.source_event_id: case.case_id for case in cases for entry in case.history}
    return {o.source_event_id: placed[o.source_event_id] for o in openings}


def _target(update: Update, known: Mapping[str, EventCase]) -> str:
    if isinstance(update, ReporterAddition):
        # The reporter knows their complaint, not the case it went to (it may have been linked).
        found = known.get(str(update.complaint_event_id))
        return found.case_id if found else derive_case_id(update.complaint_event_id)
    return update.case_id


def _order(update: Update) -> tuple[datetime, str]:
    return domain.happened_at(update), str(update.event_id)


def _value(loaded: Loaded) -> CaseUpdated:
    if loaded.value is None:
        raise LookupError(f"case {loaded.key} is not stored")
    return loaded.value
