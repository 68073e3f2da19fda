"""Repositories against the real MongoDB-wire store: writes are idempotent and order-free."""

from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from schemas.case import CaseUpdated
from services.common.store import Document
from services.reporting.facts import CountKey, case_fact
from services.reporting.repository import ReportRepository
from tests.factories import complaint_event, routed_case

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _next_revision(case: CaseUpdated, **changes: object) -> CaseUpdated:
    return case.model_copy(update={"revision": case.revision + 1, **changes})


async def test_report_facts_keep_the_latest_revision_whatever_the_arrival_order(
    store: AsyncDatabase[Document],
) -> None:
    reports = ReportRepository(store)
    kickback = routed_case(complaint_event(source_ref="K-1"), now=NOW)
    attitude = routed_case(complaint_event(source_ref="A-1", category="attitude"), now=NOW)
    reassigned = _next_revision(kickback, responsible_department=attitude.responsible_department)
    # The newer revision arrives first, and every fact arrives twice.
    for case in (reassigned, kickback, attitude, kickback, attitude, reassigned):
        await reports.record_case(case_fact(case))

    stored = {fact.case_id: fact for fact in await reports.all_cases()}
    assert set(stored) == {kickback.case_id, attitude.case_id}
    assert stored[kickback.case_id].revision == 2
    assert stored[kickback.case_id].department == "medical_affairs"  # as reassigned
    assert stored[kickback.case_id].deadline == kickback.deadline


async def test_each_record_is_counted_once_per_partition_in_order(
    store: AsyncDatabase[Document],
) -> None:
    reports = ReportRepository(store)
    november = CountKey(month="2026-11", department="finance", event_type="complaint")
    october = CountKey(month="2026-10", department=None, event_type="visitor_log")

    assert await reports.count(november, topic="t", partition=0, offset=5)
    assert await reports.count(october, topic="t", partition=0, offset=6)
    # A redelivery after a crash replays from the last commit: nothing counts twice.
    assert not await reports.count(november, topic="t", partition=0, offset=5)
    assert not await reports.count(october, topic="t", partition=0, offset=6)
    assert await reports.count(november, topic="t", partition=0, offset=7)
    # Another partition has offsets of its own.
    assert await reports.count(november, topic="t", partition=1, offset=5)

    counts = dict(await reports.month_counts(["2026-11", "2026-10"]))
    assert counts == {november: 3, october: 1}
    assert dict(await reports.month_counts(["2026-09"])) == {}


async def test_a_restarted_or_second_instance_counts_nothing_twice(
    store: AsyncDatabase[Document],
) -> None:
    """Each instance remembers how far a document has counted; that memory may lag behind the
    store (the partition moved to another instance and back), never run ahead of it."""
    key = CountKey(month="2026-11", department="finance", event_type="complaint")
    first = ReportRepository(store)
    for offset in range(3):
        assert await first.count(key, topic="moving", partition=0, offset=offset)
    restarted = ReportRepository(store)  # a process started again replays from its last commit
    assert [
        await restarted.count(key, topic="moving", partition=0, offset=n) for n in range(3)
    ] == [
        False,
        False,
        False,
    ]
    assert await restarted.count(key, topic="moving", partition=0, offset=3)
    assert await restarted.count(key, topic="moving", partition=0, offset=4)
    # Back to the first instance, which remembers offset 2: 3 and 4 are counted in the store.
    assert not await first.count(key, topic="moving", partition=0, offset=3)
    assert not await first.count(key, topic="moving", partition=0, offset=4)
    assert await first.count(key, topic="moving", partition=0, offset=5)
    assert dict(await first.month_counts(["2026-11"]))[key] >= 6
    stored = await store["reporting_counts"].find_one({"_id": "moving|0|2026-11"})
    assert stored is not None
    assert (stored["offset"], sum(stored["counts"].values())) == (5, 6)


async def test_count_keys_survive_dots_dollars_and_bars_in_department_codes(
    store: AsyncDatabase[Document],
) -> None:
    reports = ReportRepository(store)
    odd = CountKey(month="2026-11", department="a.b$c|d%e", event_type="satisfaction")

    assert await reports.count(odd, topic="t", partition=0, offset=1)

    assert dict(await reports.month_counts(["2026-11"])) == {odd: 1}
