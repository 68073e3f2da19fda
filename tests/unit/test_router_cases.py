"""The router's application layer (services/router/cases.py) on the store adapter's in-memory
twin: batches, redeliveries and replays, updates that overtake their case, two router
instances sharing one store. The same behaviours on the real broker and store:
tests/integration/test_router.py."""

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from schemas.base import derive_event_id
from schemas.case import CaseChange, CaseKind, CaseState, CaseUpdated
from schemas.case_action import CaseActionReceived, CaseActionSubmission
from schemas.complaint import ComplaintReceived
from schemas.finding import InvestigationFindingReceived, InvestigationFindingSubmission
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.lead import Lead
from services.common.documents import MemoryDocuments
from services.router.cases import Applied, Cases, Written
from services.router.domain import Opening, Update
from services.router.handlers import RouterMetrics
from services.router.store import CaseStore, RelatedClaim
from tests.factories import ROUTING, complaint_event, routed_case

T = TypeVar("T")

RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
NOW = RECEIVED + timedelta(seconds=2)
OFFICER = "S0102"


def complaint(
    ref: str, staff: str | None = "D1001", category: str = "kickback", *, days: int = 0
) -> Opening:
    return Opening.of_complaint(_complaint(ref, staff, category, days=days))


def _complaint(
    ref: str, staff: str | None = "D1001", category: str = "kickback", *, days: int = 0
) -> ComplaintReceived:
    return complaint_event(
        received_at=RECEIVED + timedelta(days=days),
        source_ref=ref,
        accused_staff_id=staff,
        category=category,
    )


def lead(ref: str) -> Opening:
    return Opening.of_lead(
        Lead(
            event_id=derive_event_id("escalation", ref),
            source_event_id=derive_event_id("visitor_log", ref),
            source_event_type="rep_visit",
            rule_id="R-REP-VISIT",
            rules_version="2026-11-26.1",
            case_kind=CaseKind.REP_VISIT,
            concerned_department="pharmacy",
            company_code="PHARMA-07",
            occurred_at=RECEIVED - timedelta(hours=2),
            received_at=RECEIVED,
            explanation_zh="医药代表未预约进入科室。",
            explanation_en="A representative entered a department without an appointment.",
        )
    )


def action(case_id: str, kind: str, ref: str, *, hours: int, **more: str) -> CaseActionReceived:
    at = RECEIVED + timedelta(hours=hours)
    submission = CaseActionSubmission.model_validate(
        {
            "source_system": "conduct_office",
            "source_ref": ref,
            "occurred_at": at,
            "case_id": case_id,
            "action": kind,
            "actor_staff_id": OFFICER,
            **more,
        }
    )
    return CaseActionReceived.accept(submission, received_at=at)


def finding(case_id: str, ref: str, *, hours: int) -> InvestigationFindingReceived:
    at = RECEIVED + timedelta(hours=hours)
    submission = InvestigationFindingSubmission.model_validate(
        {
            "source_system": "finance_office",
            "source_ref": ref,
            "occurred_at": at,
            "case_id": case_id,
            "substantiated": False,
            "summary": "经调查未查实。",
        }
    )
    return InvestigationFindingReceived.accept(submission, received_at=at)


def addition(opening: Opening, *, hours: int) -> ReporterAddition:
    return ReporterAddition(
        event_id=uuid.uuid4(),
        complaint_event_id=opening.source_event_id,
        text="补充：还有转账记录。",
        received_at=RECEIVED + timedelta(hours=hours),
    )


def reply(case_id: str, *, hours: int) -> ReporterReply:
    return ReporterReply(
        event_id=uuid.uuid4(),
        case_id=case_id,
        text="已受理。",
        sent_by="conduct_office",
        sent_at=RECEIVED + timedelta(hours=hours),
    )


def changes(case: CaseUpdated) -> list[tuple[CaseChange, uuid.UUID]]:
    return [(entry.change, entry.source_event_id) for entry in case.history]


async def stored(store: CaseStore, case_id: str) -> tuple[int, CaseUpdated | None]:
    """The case as stored, with the store's revision (one per save)."""
    loaded = await store.cases.load(case_id)
    return loaded.revision, loaded.value


async def waiting_for(store: CaseStore, case_id: str) -> set[str]:
    return set(await store.waiting.find(case_id=case_id))


def router(documents: MemoryDocuments) -> tuple[Cases, CaseStore]:
    store = CaseStore.on(documents)
    return Cases(store, ROUTING), store


# --- Opening and linking ----------------------------------------------------------------------


async def test_related_complaints_of_one_batch_make_one_case_saved_once() -> None:
    cases, store = router(MemoryDocuments())
    first, second, elsewhere = complaint("C-1"), complaint("C-2"), complaint("C-3", "D2002")

    applied = await cases.open_or_link([first, second, elsewhere], now=NOW)

    case_id = first.case_id
    revision, case = await stored(store, case_id)
    assert revision == 1  # one save for the opening and the link
    assert case is not None
    assert case == applied.cases[case_id]
    assert changes(case) == [
        (CaseChange.OPENED, first.source_event_id),
        (CaseChange.ASSIGNED, first.source_event_id),
        (CaseChange.LINKED, second.source_event_id),
    ]
    assert case.revision == 2
    assert set(applied.cases) == {case_id, elsewhere.case_id}
    assert {c.case_id for c in applied.opened()} == {case_id, elsewhere.case_id}
    assert applied.routed() == {o.source_event_id for o in (first, second, elsewhere)}
    assert await stored(store, second.case_id) == (0, None)
    found = await store.events.get_many(str(o.source_event_id) for o in (first, second))
    assert {event.case_id for event in found.values()} == {case_id}


async def test_a_batch_delivered_again_writes_nothing_and_gives_back_the_same_cases() -> None:
    cases, store = router(MemoryDocuments())
    batch = [complaint("C-1"), complaint("C-2"), complaint("C-3", None), lead("L-1")]
    first = await cases.open_or_link(batch, now=NOW)

    again = await cases.open_or_link(batch, now=NOW + timedelta(minutes=5))
    also = await cases.open_or_link(list(reversed(batch)), now=NOW + timedelta(minutes=9))

    for redelivered in (again, also):
        assert redelivered.written == []
        assert redelivered.cases == first.cases  # published again as they stand
        assert redelivered.routed() == set()
    for case_id in first.cases:
        assert (await stored(store, case_id))[0] == 1


async def test_an_event_twice_in_one_batch_is_placed_once() -> None:
    cases, _ = router(MemoryDocuments())
    one, other = complaint("C-1"), lead("L-1")

    applied = await cases.open_or_link([one, one, other, other], now=NOW)

    assert [len(case.source_event_ids) for case in applied.cases.values()] == [1, 1]
    assert len(applied.new_entries) == 4  # opened and assigned, each once


async def test_a_closed_case_keeps_no_related_complaint_the_next_opens_a_case_that_does() -> None:
    cases, store = router(MemoryDocuments())
    opener = complaint("C-1")
    await cases.open_or_link([opener], now=NOW)
    case_id = opener.case_id
    steps: list[Update] = [
        action(case_id, "start_investigation", "A-1", hours=1),
        finding(case_id, "F-1", hours=2),
        action(case_id, "close", "A-2", hours=3, reason="结案"),
    ]
    for step in steps:
        await cases.record([step], now=NOW)
    later, latest = complaint("C-2"), complaint("C-3")

    applied = await cases.open_or_link([later, latest], now=NOW)

    assert set(applied.cases) == {later.case_id}  # the closed case is neither changed nor sent
    assert changes(applied.cases[later.case_id])[-1] == (CaseChange.LINKED, latest.source_event_id)
    claims = await store.claims.find(key=opener.related_key)
    assert sorted((c.replaces or "", c.case.case_id) for c in claims.values()) == [
        ("", case_id),
        (case_id, later.case_id),
    ]
    again = await cases.open_or_link([complaint("C-4")], now=NOW)
    assert list(again.cases) == [later.case_id]


async def test_a_case_claimed_but_never_saved_is_saved_by_the_next_opening_of_its_key() -> None:
    cases, store = router(MemoryDocuments())
    stopped = complaint("C-1")  # its router claimed the key, then stopped before saving
    claim = RelatedClaim(
        key=str(stopped.related_key), replaces=None, case=routed_case(_complaint("C-1"), now=NOW)
    )
    assert await store.claims.insert(claim.claim_id, claim)
    related = complaint("C-2")

    applied = await cases.open_or_link([related], now=NOW)

    revision, case = await stored(store, stopped.case_id)
    assert revision == 2  # saved as its claimer would have, then the link
    assert case is not None
    assert changes(case)[-1] == (CaseChange.LINKED, related.source_event_id)
    assert {c.case_id for c in applied.opened()} == {stopped.case_id}
    # The stopped router's complaint, delivered again, finds its case.
    again = await cases.open_or_link([stopped], now=NOW)
    assert again.written == []
    assert list(again.cases) == [stopped.case_id]


async def test_a_complaint_outside_the_window_opens_a_case_and_a_repeated_one_stays_put() -> None:
    cases, store = router(MemoryDocuments())
    first, much_later = complaint("C-1"), complaint("C-2", days=100)  # the window is 90 days

    applied = await cases.open_or_link([first, much_later, first], now=NOW)

    assert [case.source_event_ids for case in applied.cases.values()] == [
        (first.source_event_id,),
        (much_later.source_event_id,),
    ]
    related = complaint("C-3", days=101)
    linked = await cases.open_or_link([related], now=NOW)
    assert linked.cases[much_later.case_id].source_event_ids[-1] == related.source_event_id
    claims = await store.claims.find(key=first.related_key)
    assert len(claims) == 2


class Stops(Generic[T]):
    """Store records on which ``operation`` fails: the router stops there (a crash)."""

    def __init__(self, records: T, operation: str) -> None:
        self.records, self.operation = records, operation

    def __getattr__(self, name: str) -> Any:
        if name == self.operation:
            raise RuntimeError("the router stopped")
        return getattr(self.records, name)


async def test_a_complaint_whose_router_stopped_before_remembering_it_finds_its_case() -> None:
    documents = MemoryDocuments()
    cases, store = router(documents)
    stopping = Cases(dataclasses.replace(store, events=Stops(store.events, "insert_many")), ROUTING)
    first = complaint("C-1")
    with pytest.raises(RuntimeError):
        await stopping.open_or_link([first], now=NOW)  # saved its case, did not remember
    for step in (
        action(first.case_id, "start_investigation", "A-1", hours=1),
        finding(first.case_id, "F-1", hours=2),
        action(first.case_id, "close", "A-2", hours=3),
    ):
        await cases.record([step], now=NOW)
    second = complaint("C-2")  # opens a case of its own: the first is closed
    await cases.open_or_link([second], now=NOW)

    again = await cases.open_or_link([first], now=NOW)  # delivered again

    assert again.written == []
    assert list(again.cases) == [first.case_id]
    _, other = await stored(store, second.case_id)
    assert other is not None
    assert other.source_event_ids == (second.source_event_id,)


# --- Changes ----------------------------------------------------------------------------------


async def test_changes_of_one_case_in_one_batch_apply_in_their_order_and_save_once() -> None:
    cases, store = router(MemoryDocuments())
    opener = complaint("C-1")
    await cases.open_or_link([opener], now=NOW)
    case_id = opener.case_id
    batch = [
        action(case_id, "reassign", "A-1", hours=1, to_department="medical_affairs", reason="回避"),
        action(case_id, "start_investigation", "A-2", hours=2),
        action(case_id, "close", "A-3", hours=3),
    ]

    applied = await cases.record(batch, now=NOW)

    revision, case = await stored(store, case_id)
    assert revision == 2
    assert case is not None
    assert case.revision == 4
    assert changes(case)[2:] == [
        (CaseChange.REASSIGNED, batch[0].event_id),
        (CaseChange.INVESTIGATION_STARTED, batch[1].event_id),
        (CaseChange.REFUSED, batch[2].event_id),
    ]
    assert case.history[-1].note == "结案被拒绝：尚无调查结论"
    assert applied.cases == {case_id: case}
    assert [entry.change for entry in applied.new_entries] == [
        CaseChange.REASSIGNED,
        CaseChange.INVESTIGATION_STARTED,
        CaseChange.REFUSED,
    ]
    again = await cases.record(batch, now=NOW + timedelta(hours=5))
    assert again.written == []
    assert again.cases == {case_id: case}


async def test_updates_that_overtake_their_complaint_wait_and_apply_in_time_order() -> None:
    cases, store = router(MemoryDocuments())
    opener = complaint("C-1")
    case_id = opener.case_id
    late_reply, early_finding = reply(case_id, hours=5), finding(case_id, "F-1", hours=1)
    early_addition = addition(opener, hours=3)

    first = await cases.record([late_reply, early_finding], now=NOW)
    second = await cases.record([early_addition], now=NOW)

    assert (first.cases, first.waiting, second.cases, second.waiting) == ({}, 2, {}, 1)
    assert await stored(store, case_id) == (0, None)
    assert len(await waiting_for(store, case_id)) == 3

    applied = await cases.open_or_link([opener], now=NOW)

    case = applied.cases[case_id]
    assert changes(case)[2:] == [
        (CaseChange.FINDING_RECORDED, early_finding.event_id),
        (CaseChange.REPORTER_ADDED, early_addition.event_id),
        (CaseChange.REPORTER_REPLIED, late_reply.event_id),
    ]
    assert case.state is CaseState.FINDING_RECORDED
    assert await waiting_for(store, case_id) == set()
    assert (await stored(store, case_id))[1] == case


async def test_a_reporters_addition_goes_to_the_case_their_complaint_was_linked_to() -> None:
    cases, store = router(MemoryDocuments())
    opener, linked = complaint("C-1"), complaint("C-2")
    early = addition(linked, hours=1)  # before its complaint: waits under its own case id
    await cases.record([early], now=NOW)

    await cases.open_or_link([opener, linked], now=NOW)
    late = await cases.record([addition(linked, hours=2)], now=NOW)

    case = late.cases[opener.case_id]
    added = [e.source_event_id for e in case.history if e.change is CaseChange.REPORTER_ADDED]
    assert added[0] == early.event_id
    assert len(added) == 2
    assert await waiting_for(store, linked.case_id) == set()
    assert await stored(store, linked.case_id) == (0, None)


# --- Two router instances on one store --------------------------------------------------------


async def test_two_instances_opening_related_complaints_at_once_make_one_case_per_key() -> None:
    documents = MemoryDocuments()
    (one, store), (two, _) = router(documents), router(documents)
    keys = [f"D{n:04d}" for n in range(30)]
    batches = [[complaint(f"{staff}-{n}", staff) for staff in keys] for n in range(4)]

    results = await asyncio.gather(
        one.open_or_link(batches[0] + batches[2], now=NOW),
        two.open_or_link(batches[1] + batches[3], now=NOW),
    )

    everything = [o for batch in batches for o in batch]
    placed = await store.events.get_many(str(o.source_event_id) for o in everything)
    assert len(placed) == len(everything)
    holders = {event.case_id for event in placed.values()}
    assert len(holders) == len(keys)  # one case per staff member, none opened twice
    for case_id in holders:
        _, case = await stored(store, case_id)
        assert case is not None
        assert len(case.source_event_ids) == 4
        assert case.revision == len(case.history) - 1 == 4
    opened = sum(len(applied.opened()) for applied in results)
    linked = sum(e.change is CaseChange.LINKED for a in results for e in a.new_entries)
    assert (opened, linked) == (len(keys), 3 * len(keys))  # counted once over both


async def test_two_instances_changing_one_case_at_once_lose_no_change() -> None:
    documents = MemoryDocuments()
    (one, store), (two, _) = router(documents), router(documents)
    opener = complaint("C-1")
    await one.open_or_link([opener], now=NOW)
    replies = [reply(opener.case_id, hours=n) for n in range(1, 41)]

    await asyncio.gather(
        *(
            (one if n % 2 else two).record(replies[n : n + 4], now=NOW)
            for n in range(0, len(replies), 4)
        )
    )

    _, case = await stored(store, opener.case_id)
    assert case is not None
    replied = [e.source_event_id for e in case.history if e.change is CaseChange.REPORTER_REPLIED]
    assert sorted(replied) == sorted(r.event_id for r in replies)
    assert case.revision == 1 + len(replies)


async def after_steps(steps: int, work: Awaitable[Applied]) -> Applied:
    """``work``, once other tasks had ``steps`` turns (each store operation of the twin is one)."""
    for _ in range(steps):
        await asyncio.sleep(0)
    return await work


async def test_an_update_waiting_while_its_case_opens_is_applied_once() -> None:
    # The update is started later and later, so that every interleaving of its steps with the
    # opener's happens: it waits while the opener looks for what waits, or the other way round.
    for steps in range(40):
        documents = MemoryDocuments()
        (opener, store), (recorder, _) = router(documents), router(documents)
        opening = complaint(f"C-{steps}")
        update = finding(opening.case_id, f"F-{steps}", hours=1)

        await asyncio.gather(
            opener.open_or_link([opening], now=NOW),
            after_steps(steps, recorder.record([update], now=NOW)),
        )

        _, case = await stored(store, opening.case_id)
        assert case is not None
        assert changes(case).count((CaseChange.FINDING_RECORDED, update.event_id)) == 1, steps
        assert await waiting_for(store, opening.case_id) == set()


class ReadsThenWaits(Generic[T]):
    """Store records whose first ``read`` answers only once the test lets it (``go``): the
    reader then acts on what it read while others change the store."""

    def __init__(self, records: T, read: str) -> None:
        self.records, self.read, self.reads = records, read, 0
        self.held, self.go = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.records, name)
        if name != self.read:
            return found

        async def read_then_wait(*args: Any, **kwargs: Any) -> Any:
            result = await found(*args, **kwargs)
            self.reads += 1
            if self.reads == 1:
                self.held.set()
                await self.go.wait()
            return result

        return read_then_wait


def late_reader(
    documents: MemoryDocuments, *, of: str, read: str
) -> tuple[Cases, ReadsThenWaits[Any]]:
    """A router whose first ``read`` of ``of`` (a field of CaseStore) answers late."""
    store = CaseStore.on(documents)
    late = ReadsThenWaits(getattr(store, of), read)
    return Cases(dataclasses.replace(store, **{of: late}), ROUTING), late


async def test_an_update_is_applied_when_its_case_opened_after_it_looked_and_before_it_waited() -> (
    None
):
    documents = MemoryDocuments()
    opener, store = router(documents)
    recorder, late_read = late_reader(documents, of="cases", read="load_many")
    opening = complaint("C-1")
    update = finding(opening.case_id, "F-1", hours=1)

    recording = asyncio.create_task(recorder.record([update], now=NOW))
    await late_read.held.wait()  # it read that the case is not open
    opened = await opener.open_or_link([opening], now=NOW)  # nothing waits for it yet
    late_read.go.set()
    recorded = await recording

    assert changes(opened.cases[opening.case_id])[-1][0] is CaseChange.ASSIGNED
    case = recorded.cases[opening.case_id]
    assert changes(case)[-1] == (CaseChange.FINDING_RECORDED, update.event_id)
    assert recorded.waiting == 0
    assert await waiting_for(store, opening.case_id) == set()


async def test_a_reply_sent_after_one_that_waited_for_the_case_is_recorded_after_it() -> None:
    # The first reply waits for its case. The opener reads it, to apply it, while another
    # instance is handed the second reply and finds the case open.
    documents = MemoryDocuments()
    opener, late_read = late_reader(documents, of="waiting", read="find")
    recorder, store = router(documents)
    opening = complaint("C-1")
    first, second = reply(opening.case_id, hours=1), reply(opening.case_id, hours=2)
    assert (await recorder.record([first], now=NOW)).waiting == 1

    opening_task = asyncio.create_task(opener.open_or_link([opening], now=NOW))
    await late_read.held.wait()  # the case is open, and the opener read what waits for it
    await recorder.record([second], now=NOW)
    late_read.go.set()
    await opening_task

    _, case = await stored(store, opening.case_id)
    assert case is not None
    replied = [event for change, event in changes(case) if change is CaseChange.REPORTER_REPLIED]
    assert replied == [first.event_id, second.event_id]
    assert await waiting_for(store, opening.case_id) == set()


async def test_an_addition_finds_the_case_its_complaint_was_linked_to_after_it_looked() -> None:
    documents = MemoryDocuments()
    opener, store = router(documents)
    recorder, late_read = late_reader(documents, of="events", read="get_many")
    first, linked = complaint("C-1"), complaint("C-2")
    await opener.open_or_link([first], now=NOW)
    late = addition(linked, hours=1)

    recording = asyncio.create_task(recorder.record([late], now=NOW))
    await late_read.held.wait()  # it read that the complaint is not routed yet
    await opener.open_or_link([linked], now=NOW)
    late_read.go.set()
    recorded = await recording

    case = recorded.cases[first.case_id]
    assert changes(case)[-1] == (CaseChange.REPORTER_ADDED, late.event_id)
    assert await waiting_for(store, linked.case_id) == set()


async def test_an_addition_waiting_while_its_complaint_is_linked_is_applied() -> None:
    documents = MemoryDocuments()
    recorder, store = router(documents)
    opener, late_read = late_reader(documents, of="waiting", read="find")
    first, linked = complaint("C-1"), complaint("C-2")
    await recorder.open_or_link([first], now=NOW)
    early = addition(linked, hours=1)

    linking = asyncio.create_task(opener.open_or_link([linked], now=NOW))
    await late_read.held.wait()  # linked, and it looked for what waits: nothing yet
    recorded = await recorder.record([early], now=NOW)
    late_read.go.set()
    await linking

    case = recorded.cases[first.case_id]
    assert changes(case)[-1] == (CaseChange.REPORTER_ADDED, early.event_id)
    assert await waiting_for(store, linked.case_id) == set()


def test_what_a_batch_did_keeps_the_latest_revision_of_each_case() -> None:
    case = routed_case(_complaint("C-1"))
    later = case.model_copy(update={"revision": 3})
    applied = Applied()

    applied.add(Written(case, later), Written(case, case))

    assert applied.cases == {case.case_id: later}
    assert applied.written == [Written(case, later)]


async def test_the_metrics_count_what_a_batch_did_under_their_names() -> None:
    cases, _ = router(MemoryDocuments())
    registry = CollectorRegistry()
    metrics = RouterMetrics.with_routing(registry, ROUTING)
    first, second = complaint("C-1"), complaint("C-2")
    early = finding("CASE-00000000000000000000", "F-1", hours=1)  # for a case not open

    opened = await cases.open_or_link([first, second], now=NOW + timedelta(seconds=3))
    metrics.count(opened, [first, second], now=NOW + timedelta(seconds=3))
    metrics.count(await cases.record([early], now=NOW), now=NOW)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("qinglian_routing_table_info", version=ROUTING.version) == 1
    assert value("qinglian_case_changes_total", change="opened") == 1
    assert value("qinglian_case_changes_total", change="assigned") == 1
    assert value("qinglian_case_changes_total", change="linked") == 1
    department = opened.cases[first.case_id].responsible_department.code
    assert (
        value(
            "qinglian_cases_opened_total",
            department=department,
            kind="complaint",
            category="kickback",
        )
        == 1
    )
    assert value("qinglian_case_updates_parked_total") == 1
    assert value("qinglian_routing_latency_seconds_count") == 2
    assert value("qinglian_routing_latency_seconds_sum") == pytest.approx(2 * 5.0)
