"""The records of the topics turned into report facts, a batch at a time: the same code for the
live service (on the store) and for a rebuild (in memory, then written once).

Each batch is read in one wave and written in one, and a replay changes nothing:

- facts and dead letters are counted into their count documents (``counting``), each touched
  document saved once over the revision it was read at; the KPI observations and study
  sessions among the records not counted yet are kept first, so that a document's offset
  never passes a record whose facts were not kept;
- of each case, the highest revision is kept (an older or a repeated one changes nothing);
- a decision is kept once, by its event id.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from schemas import topics
from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from schemas.kpi import KpiObservationReceived
from schemas.training import TrainingHeldReceived
from services.common.consuming import Received
from services.common.departments import DepartmentCatalogue
from services.common.documents import Versioned
from services.reporting.counting import (
    Countable,
    CountDocument,
    count_document_id,
    counted_up_to,
    fold,
)
from services.reporting.facts import (
    CaseFact,
    CaseRecord,
    CountKey,
    case_fact,
    count_key,
    report_month,
)
from services.reporting.store import CaseOfEvent, HeldSession, ReportStore, in_waves

DEAD_LETTER = "dead_letter"
"""The event type dead letters are counted under."""

REPORT_TOPICS = (*topics.FACTS, topics.CASES, topics.DECISIONS, topics.DEAD_LETTERS)
"""Every topic the reports are built from."""


def _fact_of(record: CaseRecord) -> CaseFact:
    return CaseFact.model_validate(record.model_dump(exclude={"history"}))


class Ingest:
    def __init__(self, store: ReportStore, *, departments: DepartmentCatalogue) -> None:
        self.store = store
        self.departments = departments
        """Whose heads a complaint may accuse (``count_key``)."""

    # --- Counting -----------------------------------------------------------------------------

    async def facts(self, batch: Sequence[Received[Event]]) -> Counter[str]:
        """Count fact events, keeping the KPI observations and study sessions among them; the
        event types counted now (not before). A record counted before costs one look at its
        count document: a replay changes nothing, and fast."""
        documents = [
            count_document_id(r.topic, r.partition, report_month(r.value.received_at))
            for r in batch
        ]
        loaded = await self.store.counts.load_many(documents)
        fresh = [
            record
            for record, document_id in zip(batch, documents, strict=True)
            if record.offset > counted_up_to(loaded[document_id].value)
        ]
        await self._keep(record.value for record in fresh)
        countables = [
            Countable(r.topic, r.partition, r.offset, count_key(r.value, self.departments))
            for r in fresh
        ]
        return await self._count(countables, loaded)

    async def dead_letters(self, batch: Sequence[Received[DeadLetter]]) -> Counter[str]:
        """Count dead letters, under no department, in the month they were dead-lettered."""
        countables = [
            Countable(
                r.topic,
                r.partition,
                r.offset,
                CountKey(
                    month=report_month(r.value.dead_lettered_at),
                    department=None,
                    event_type=DEAD_LETTER,
                ),
            )
            for r in batch
        ]
        loaded = await self.store.counts.load_many({c.document_id for c in countables})
        return await self._count(countables, loaded)

    async def _keep(self, events: Iterable[Event]) -> None:
        observations: dict[str, KpiObservationReceived] = {}
        sessions: dict[str, HeldSession] = {}
        for event in events:
            if isinstance(event, KpiObservationReceived):
                observations[str(event.event_id)] = event
            elif isinstance(event, TrainingHeldReceived):
                sessions[str(event.event_id)] = HeldSession.model_validate_json(
                    event.model_dump_json()
                )
        if observations:
            await self.store.observations.insert_many(observations)
        if sessions:
            await self.store.sessions.insert_many(sessions)

    async def _count(
        self, countables: Sequence[Countable], loaded: Mapping[str, Versioned[CountDocument]]
    ) -> Counter[str]:
        by_document: defaultdict[str, list[Countable]] = defaultdict(list)
        for countable in countables:
            by_document[countable.document_id].append(countable)

        async def count_into(item: tuple[str, list[Countable]]) -> Counter[str]:
            return await self._count_into(loaded[item[0]], item[1])

        return sum(await in_waves(list(by_document.items()), count_into), Counter())

    async def _count_into(
        self, current: Versioned[CountDocument], records: Sequence[Countable]
    ) -> Counter[str]:
        folded = fold(current.value, records)
        if folded is None:
            return Counter()
        document, fresh = folded
        if not await self.store.counts.save(current.key, document, over=current.revision):
            # Another instance counted in this document since it was read: count what it did
            # not, over what it saved.
            fresh = []

            async def recount(latest: Versioned[CountDocument]) -> CountDocument | None:
                nonlocal fresh
                again = fold(latest.value, records)
                fresh = [] if again is None else again[1]
                return None if again is None else again[0]

            await self.store.counts.update(current.key, recount)
        return Counter(record.key.event_type for record in fresh)

    # --- Cases and decisions ------------------------------------------------------------------

    async def cases(self, batch: Sequence[Received[CaseUpdated]]) -> None:
        """Keep the highest revision of each case, and show it to the reports. A case kept
        before but not shown (the store went away in between: the batch comes again) is shown
        now; one kept and shown before changes nothing."""
        latest: dict[str, CaseRecord] = {}
        for record in batch:
            case = case_fact(record.value)
            if case.case_id not in latest or latest[case.case_id].revision < case.revision:
                latest[case.case_id] = case
        loaded = await self.store.cases.load_many(latest)
        newer = [case for case in latest.values() if _newer(case, loaded[case.case_id].value)]
        unshown = await self._unshown(
            [case for case in latest.values() if _same(case, loaded[case.case_id].value)]
        )
        if not newer and not unshown:
            return
        await self.store.case_events.insert_many(
            {
                event_id: CaseOfEvent(case_id=case.case_id)
                for case in [*newer, *unshown]
                for event_id in case.source_event_ids
            }
        )
        await in_waves(newer, lambda case: self._keep_case(case, loaded[case.case_id]))
        await self._show(
            {case.case_id: case for case in [*newer, *unshown]},
            new={case.case_id for case in newer if loaded[case.case_id].revision == 0},
        )

    async def _unshown(self, kept: Sequence[CaseRecord]) -> list[CaseRecord]:
        """Of cases kept at their revision, those whose facts the reports do not have yet."""
        if not kept:
            return []
        shown = await self.store.case_facts.get_many(case.case_id for case in kept)
        return [
            case
            for case in kept
            if case.case_id not in shown or shown[case.case_id].revision < case.revision
        ]

    async def _keep_case(self, case: CaseRecord, current: Versioned[CaseRecord]) -> None:
        if await self.store.cases.save(case.case_id, case, over=current.revision):
            return

        async def keep_newer(latest: Versioned[CaseRecord]) -> CaseRecord | None:
            return case if _newer(case, latest.value) else None

        await self.store.cases.update(case.case_id, keep_newer)

    async def _show(self, saved: Mapping[str, CaseRecord], *, new: set[str]) -> None:
        """Put the cases' facts where the reports select them. Two instances that saved one case
        may put its facts in either order, so each looks again after putting, and puts the
        latest revision if it changed meanwhile: the last to put leaves the latest."""
        shown = {case_id: _fact_of(case) for case_id, case in saved.items()}
        # A case new to the store is inserted, not replaced: of two upserts of one new document
        # at once FerretDB refuses one (duplicate key), where MongoDB tries it again.
        created = await self.store.case_facts.insert_many(
            {case_id: fact for case_id, fact in shown.items() if case_id in new}
        )
        replaced = {case_id: fact for case_id, fact in shown.items() if case_id not in created}
        while shown:
            await self.store.case_facts.put_many(replaced)
            stored = await self.store.cases.load_many(shown)
            shown = replaced = {
                case_id: _fact_of(kept.value)
                for case_id, kept in stored.items()
                if kept.value is not None and kept.value.revision != shown[case_id].revision
            }

    async def decisions(self, batch: Sequence[Received[Decision]]) -> list[Decision]:
        """Keep each decision once; those kept now (not before)."""
        decisions = {str(record.value.event_id): record.value for record in batch}
        kept = await self.store.decisions.insert_many(decisions)
        return [decisions[event_id] for event_id in sorted(kept)]


def _newer(case: CaseRecord, kept: CaseRecord | None) -> bool:
    return kept is None or kept.revision < case.revision


def _same(case: CaseRecord, kept: CaseRecord | None) -> bool:
    return kept is not None and kept.revision == case.revision
