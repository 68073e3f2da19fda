"""Reporting's ingest against the real MongoDB-wire store: what it keeps of each batch is exact
under redelivery, a restart and two instances writing at once (FerretDB makes no conditional
update or ``$inc`` atomic), and the reports read back what it kept."""

import asyncio
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase

from schemas.base import Event
from schemas.complaint import ComplaintReceived
from services.common.consuming import Received
from services.common.departments import DEPARTMENTS_FILE, DepartmentCatalogue
from services.common.documents import MongoDocuments
from services.common.store import Document
from services.reporting.counting import CountDocument, Tally, count_document_id
from services.reporting.facts import CountKey, case_fact, count_key
from services.reporting.ingest import Ingest
from services.reporting.store import ReportStore
from tests.factories import complaint_event, routed_case

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CATALOGUE = DepartmentCatalogue.from_file(DEPARTMENTS_FILE)


def _ingest(store: AsyncDatabase[Document]) -> Ingest:
    """An instance of reporting on ``store``: each has its own adapter, as a process has."""
    return Ingest(ReportStore(MongoDocuments(store)), departments=CATALOGUE)


def _complaint(n: int, *, received_at: datetime = NOW) -> ComplaintReceived:
    return complaint_event(
        source_ref=f"R-{n}", received_at=received_at, accused_department="finance"
    )


def _at(value: Event, offset: int, *, partition: int = 0) -> Received[Event]:
    return Received(value, "t", partition, offset)


async def test_each_record_is_counted_once_per_partition_in_order(
    store: AsyncDatabase[Document],
) -> None:
    ingest = _ingest(store)
    november, october = _complaint(1), _complaint(2, received_at=NOW - timedelta(days=30))

    assert await ingest.facts([_at(november, 5), _at(october, 6)]) == {"complaint": 2}
    # A redelivery after a crash replays from the last commit: nothing counts twice.
    assert await ingest.facts([_at(november, 5), _at(october, 6)]) == {}
    assert await ingest.facts([_at(october, 6), _at(november, 7)]) == {"complaint": 1}
    # Another partition has offsets of its own.
    assert await ingest.facts([_at(november, 5, partition=1)]) == {"complaint": 1}

    november_key, october_key = count_key(november, CATALOGUE), count_key(october, CATALOGUE)
    assert dict(await ingest.store.month_counts("2026-11")) == {november_key: 3}
    assert dict(await ingest.store.month_counts("2026-10")) == {october_key: 1}
    assert dict(await ingest.store.month_counts("2026-09")) == {}


async def test_a_restarted_or_second_instance_counts_nothing_twice(
    store: AsyncDatabase[Document],
) -> None:
    events = [_complaint(n) for n in range(8)]
    first = _ingest(store)
    await first.facts([_at(event, n) for n, event in enumerate(events[:3])])
    restarted = _ingest(store)  # a process started again replays from its last commit
    assert await restarted.facts([_at(event, n) for n, event in enumerate(events[:5])]) == {
        "complaint": 2
    }
    # Back to the first instance, which last saw offset 2: 3 and 4 are counted in the store.
    assert await first.facts([_at(event, n) for n, event in enumerate(events) if n >= 3]) == {
        "complaint": 3
    }
    stored = await first.store.counts.load(count_document_id("t", 0, "2026-11"))
    assert stored.value is not None
    assert (stored.value.offset, sum(tally.count for tally in stored.value.tallies)) == (7, 8)


async def test_two_instances_counting_the_same_records_at_once_count_each_once(
    store: AsyncDatabase[Document],
) -> None:
    """Around a rebalance several instances may handle the same records of a partition, each
    in the partition's order (from the last commit); each one's count is saved only over the
    revision it read."""
    events = [_complaint(n) for n in range(40)]
    batches = [[_at(events[n], n) for n in range(start, start + 10)] for start in (0, 10, 20, 30)]
    instances = [_ingest(store) for _ in range(4)]

    async def in_order(instance: Ingest) -> int:
        return sum([sum((await instance.facts(batch)).values()) for batch in batches])

    counted = await asyncio.gather(*(in_order(instance) for instance in instances))

    assert sum(counted) == 40
    key = count_key(events[0], CATALOGUE)
    assert dict(await instances[0].store.month_counts("2026-11")) == {key: 40}


async def test_count_keys_survive_dots_dollars_and_bars_in_department_codes(
    store: AsyncDatabase[Document],
) -> None:
    reports = ReportStore(MongoDocuments(store))
    odd = CountKey(month="2026-11", department="a.b$c|d%e", event_type="satisfaction")
    document = CountDocument(
        topic="t", partition=0, month="2026-11", offset=1, tallies=(Tally(key=odd, count=1),)
    )
    assert await reports.counts.save(count_document_id("t", 0, "2026-11"), document, over=0)

    assert dict(await reports.month_counts("2026-11")) == {odd: 1}


async def test_report_facts_keep_the_latest_revision_whatever_the_arrival_order(
    store: AsyncDatabase[Document],
) -> None:
    ingest = _ingest(store)
    kickback = routed_case(complaint_event(source_ref="K-1"), now=NOW)
    attitude = routed_case(complaint_event(source_ref="A-1", category="attitude"), now=NOW)
    reassigned = kickback.model_copy(
        update={"revision": 2, "responsible_department": attitude.responsible_department}
    )
    # The newer revision arrives first, and every fact arrives twice.
    for offset, case in enumerate((reassigned, kickback, attitude, kickback, attitude, reassigned)):
        await ingest.cases([Received(case, "cases", 0, offset)])

    stored = {fact.case_id: fact for fact in await ingest.store.cases_opened("2026-11")}
    assert set(stored) == {kickback.case_id, attitude.case_id}
    assert stored[kickback.case_id].revision == 2
    assert stored[kickback.case_id].department == "medical_affairs"  # as reassigned
    assert stored[kickback.case_id].deadline == kickback.deadline
    assert await ingest.store.case(kickback.case_id) == case_fact(reassigned)


async def test_two_instances_keeping_a_case_at_once_leave_its_latest_revision(
    store: AsyncDatabase[Document],
) -> None:
    case = routed_case(complaint_event(source_ref="K-2"), now=NOW)
    revisions = [case.model_copy(update={"revision": n}) for n in range(1, 9)]

    await asyncio.gather(
        *(
            _ingest(store).cases([Received(revision, "cases", 0, n)])
            for n, revision in enumerate(revisions)
        )
    )

    reports = ReportStore(MongoDocuments(store))
    assert await reports.case(case.case_id) == case_fact(revisions[-1])
    (shown,) = await reports.cases_opened("2026-11")
    assert shown.revision == 8
