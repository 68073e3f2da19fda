"""Escalation's application layer (services/escalation/filing.py) on the store's in-memory twin:
batches filed file by file, decisions published before the files are saved, corrections of
what an overtaken writer published, the watch list and the periodic check, leads. The same
behaviours against the real broker and store are in tests/integration/test_escalation.py."""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.catalogue import BY_TYPE
from schemas.decision import Decision, DecisionKind, EscalationTarget, SubjectKind
from schemas.lead import Lead
from services.common.documents import MemoryDocuments, StoreBusyError
from services.escalation.conduct import ConductFile, same_decision
from services.escalation.filing import Escalation, FileUpdate, with_events
from services.escalation.rulebook import RuleBook
from services.escalation.rules import evaluate
from services.escalation.settings import EscalationSettings
from services.escalation.store import EscalationStore
from services.router.domain import record_finding
from tests.factories import complaint_event, routed_case

BOOK = RuleBook.from_file(EscalationSettings().rules)
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def accepted(event_type: str, ref: str, **facts: Any) -> Any:
    kind = BY_TYPE[event_type]
    submission = kind.submission.model_validate(
        {"source_system": "filing_test", "source_ref": ref, **facts}
    )
    return kind.event.accept(submission, received_at=NOW - timedelta(days=1))


def finding(
    staff: Sequence[str], case_id: str, *, on: str, company: str | None = None, **facts: Any
) -> Any:
    return accepted(
        "investigation_finding",
        f"F-{case_id}-{on}",
        occurred_at=on,
        case_id=case_id,
        substantiated=True,
        confirmed_categories=facts.pop("categories", ["kickback"]),
        staff_ids=list(staff),
        company_code=company,
        company_name=None if company is None else "某医药有限公司",
        summary="经调查查实。",
        **facts,
    )


def application(staff: str, application_id: str, *, on: str) -> Any:
    return accepted(
        "promotion_application",
        application_id,
        occurred_at=on,
        staff_id=staff,
        application_id=application_id,
        target_position="副主任医师",
    )


def visit(company: str, ref: str, *, at: str = "2026-11-18T10:00:00+08:00") -> Any:
    return accepted(
        "visitor_log",
        ref,
        occurred_at=at,
        rep_id="REP-1",
        rep_name="王某",
        company_code=company,
        company_name="某医药有限公司",
        department="cardiology",
        place_code="W3-12",
        place_kind="ward",
        started_at=at,
    )


CASE_1 = "CASE-0000000000000000000A"
CASE_2 = "CASE-0000000000000000000B"


@dataclass
class Topics:
    """What escalation published, in order; ``hold`` pauses publishing decisions that match."""

    decisions: list[Decision] = field(default_factory=list)
    leads: list[Lead] = field(default_factory=list)

    async def publish_decisions(self, decisions: Sequence[Decision]) -> None:
        self.decisions += decisions

    async def publish_leads(self, leads: Sequence[Lead]) -> None:
        self.leads += leads

    def on(self, subject_id: str) -> list[Decision]:
        return [d for d in self.decisions if d.subject_id == subject_id]


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class CasesTopic:
    """Whether every case revision published so far has been read."""

    all_read: bool = True

    async def __call__(self) -> bool:
        return self.all_read


def escalation(
    documents: MemoryDocuments,
    topics: Topics,
    clock: Clock | None = None,
    cases: CasesTopic | None = None,
) -> Escalation:
    return Escalation(
        EscalationStore(documents),
        BOOK,
        clock=clock or Clock(),
        publish_decisions=topics.publish_decisions,
        publish_leads=topics.publish_leads,
        cases_all_read=cases or CasesTopic(),
    )


async def kept(documents: MemoryDocuments, kind: SubjectKind, subject_id: str) -> Any:
    return await EscalationStore(documents).files.load(f"{kind}:{subject_id}")


async def test_a_batch_is_filed_with_one_revision_per_file_and_every_decision_published() -> None:
    documents, topics = MemoryDocuments(), Topics()
    events = [
        finding(["S1", "S2"], CASE_1, on="2025-09-01T10:00:00+08:00", company="YX-1"),
        *(application("S1", f"HR-{n}", on=f"2026-0{n}-02T10:00:00+08:00") for n in range(1, 6)),
        application("S2", "HR-S2", on="2026-01-02T10:00:00+08:00"),
        *(visit("YX-1", f"V-{n}") for n in range(3)),
    ]

    published = await escalation(documents, topics).file_events(events)

    assert topics.decisions == published
    for kind, subject_id, held in (
        (SubjectKind.STAFF, "S1", [events[0], *events[1:6]]),
        (SubjectKind.STAFF, "S2", [events[0], events[6]]),
        (SubjectKind.COMPANY, "YX-1", [events[0], *events[7:]]),
    ):
        loaded = await kept(documents, kind, subject_id)
        assert loaded.revision == 1, subject_id  # one save per file for the whole batch
        assert [e.event_id for e in loaded.value.file.events] == [e.event_id for e in held]
        decided = evaluate(loaded.value.file, BOOK, now=NOW)
        assert [d.event_id for d in topics.on(subject_id)] == [d.event_id for d in decided]
        assert loaded.value.by_key() == {d.key: d for d in decided}
    assert all(not d.allowed for d in topics.decisions if d.kind is DecisionKind.PROMOTION_DECISION)


async def test_events_of_one_file_in_one_batch_are_decided_together_in_two_batches_corrected() -> (
    None
):
    applied = application("S1", "HR-1", on="2026-05-20T10:00:00+08:00")
    found = finding(["S1"], CASE_1, on="2025-09-01T15:00:00+08:00", categories=["gambling"])
    key = "R-PROMO-2Y:application:HR-1"

    together = Topics()
    await escalation(MemoryDocuments(), together).file_events([applied, found])
    (refusal,) = [d for d in together.decisions if d.key == key]
    assert (refusal.allowed, refusal.corrects) == (False, None)

    apart, documents = Topics(), MemoryDocuments()
    await escalation(documents, apart).file_events([applied])
    await escalation(documents, apart).file_events([found])
    first, correction = [d for d in apart.decisions if d.key == key]
    assert (first.allowed, correction.allowed) == (True, False)
    assert correction.corrects == first.event_id
    assert (await kept(documents, SubjectKind.STAFF, "S1")).revision == 2


async def test_a_redelivered_batch_changes_nothing_and_publishes_nothing() -> None:
    documents, topics = MemoryDocuments(), Topics()
    events = [finding(["S1"], CASE_1, on="2025-09-01T10:00:00+08:00"), visit("YX-1", "V-1")]
    await escalation(documents, topics).file_events(events)
    before = list(topics.decisions)

    assert await escalation(documents, topics).file_events([*events, *events]) == []
    assert topics.decisions == before
    assert (await kept(documents, SubjectKind.STAFF, "S1")).revision == 1


async def test_after_a_crash_between_publishing_and_saving_the_same_decisions_go_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents, topics = MemoryDocuments(), Topics()
    events = [finding(["S1"], CASE_1, on="2025-09-01T10:00:00+08:00", company="YX-1")]
    crashing = escalation(documents, topics)

    async def crash(key: str, value: Any, *, over: int) -> bool:
        raise ConnectionError("the store went away")

    monkeypatch.setattr(crashing.store.files, "save", crash)
    with pytest.raises(ConnectionError):
        await crashing.file_events(events)
    monkeypatch.undo()
    first = list(topics.decisions)
    assert first

    again = await escalation(documents, topics).file_events(events)
    assert [d.event_id for d in again] == [d.event_id for d in first]
    assert (await kept(documents, SubjectKind.STAFF, "S1")).revision == 1


async def test_what_a_writer_published_before_losing_the_race_to_save_is_corrected() -> None:
    """The application's writer publishes "allowed", then loses the race to save to the
    finding's writer: deciding again on that writer's file, it corrects what it published
    instead of publishing a second decision as if the first had never been."""
    documents, topics = MemoryDocuments(), Topics()
    finding_saved, allowed_published = asyncio.Event(), asyncio.Event()

    async def publish_held(decisions: Sequence[Decision]) -> None:
        topics.decisions += decisions
        if any(d.allowed for d in decisions):
            allowed_published.set()
            await finding_saved.wait()  # held between publishing and saving

    applying = escalation(documents, topics)
    applying.publish_decisions = publish_held
    applied = application("S1", "HR-1", on="2026-05-20T10:00:00+08:00")
    found = finding(["S1"], CASE_1, on="2025-09-01T15:00:00+08:00", categories=["gambling"])

    task = asyncio.create_task(applying.file_events([applied]))
    await allowed_published.wait()
    await escalation(documents, topics).file_events([found])
    finding_saved.set()
    await task

    allowed, bar, *rest = topics.decisions
    assert (allowed.allowed, bar.kind) == (True, DecisionKind.PROMOTION_BAR)
    (refused,) = rest
    assert (refused.key, refused.allowed, refused.corrects) == (
        allowed.key,
        False,
        allowed.event_id,
    )
    loaded = await kept(documents, SubjectKind.STAFF, "S1")
    assert loaded.value.by_key()[allowed.key] == refused
    assert loaded.revision == 2


async def test_what_the_winner_published_meanwhile_is_corrected_when_it_no_longer_holds() -> None:
    """Two writers decide one application on a file each lacks the other's finding of: the
    first publishes a refusal naming the longer bar, then waits; the second publishes a
    refusal naming the shorter bar and saves. The first, deciding again on both findings,
    finds its own refusal right, but the second's, published after it, is the last word on
    the topic for that application: it must be corrected, not left standing."""
    documents, topics = MemoryDocuments(), Topics()
    applied = application("S1", "HR-1", on="2026-05-20T10:00:00+08:00")
    await escalation(documents, topics).file_events([applied])
    long_bar = finding(["S1"], CASE_1, on="2025-09-01T15:00:00+08:00", categories=["gambling"])
    short_bar = finding(["S1"], CASE_2, on="2025-03-01T15:00:00+08:00", categories=["attitude"])
    key = "R-PROMO-2Y:application:HR-1"
    second_saved, long_bar_published = asyncio.Event(), asyncio.Event()

    async def publish_held(decisions: Sequence[Decision]) -> None:
        topics.decisions += decisions
        if any(d.case_id == CASE_1 for d in decisions if d.key == key):
            long_bar_published.set()
            await second_saved.wait()  # held between publishing and saving

    first = escalation(documents, topics)
    first.publish_decisions = publish_held
    task = asyncio.create_task(first.file_events([long_bar]))
    await long_bar_published.wait()
    await escalation(documents, topics).file_events([short_bar])
    second_saved.set()
    await task

    on_key = [d for d in topics.decisions if d.key == key]
    assert [d.case_id for d in on_key[:3]] == [None, CASE_1, CASE_2]  # allowed, then the two
    last = on_key[-1]
    assert (last.allowed, last.case_id) == (False, CASE_1)
    loaded = await kept(documents, SubjectKind.STAFF, "S1")
    assert loaded.value.by_key()[key] == last
    decided = {d.key: d for d in evaluate(loaded.value.file, BOOK, now=NOW)}
    assert same_decision(last, decided[key])


async def test_concurrent_writers_to_one_file_keep_every_event_and_what_they_published() -> None:
    documents, topics = MemoryDocuments(), Topics()
    complaints = [complaint_event(source_ref=f"RACE-{n}", accused_staff_id="S1") for n in range(20)]

    await asyncio.gather(
        *(escalation(documents, topics).file_events([c]) for c in complaints),
        *(escalation(documents, topics).recheck_watched() for _ in range(5)),
    )

    loaded = await kept(documents, SubjectKind.STAFF, "S1")
    held = sorted(str(e.event_id) for e in loaded.value.file.events)
    assert held == sorted(str(c.event_id) for c in complaints)
    assert loaded.revision == len(complaints)  # one revision per change, none for no change
    standing = {k: d for k, d in loaded.value.by_key().items() if not d.withdrawn}
    decided = evaluate(loaded.value.file, BOOK, now=NOW)
    assert {d.key: d.event_id for d in decided} == {k: d.event_id for k, d in standing.items()}
    assert {d.event_id for d in topics.decisions} >= {d.event_id for d in standing.values()}


async def test_a_file_that_keeps_changing_fails_the_batch_for_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents, topics = MemoryDocuments(), Topics()
    busy = escalation(documents, topics)

    async def always_overtaken(key: str, value: Any, *, over: int) -> bool:
        return False

    monkeypatch.setattr(busy.store.files, "save", always_overtaken)
    update = FileUpdate(
        ConductFile(subject_kind=SubjectKind.STAFF, subject_id="S1"),
        with_events([application("S1", "HR-1", on="2026-05-20T10:00:00+08:00")]),
        NOW,
    )
    with pytest.raises(StoreBusyError):
        await busy.update([update])
    # Decided again each time, published once: the same decision is not sent again.
    assert len(topics.decisions) == 1


def _case(received: datetime) -> CaseUpdated:
    complaint = complaint_event(received_at=received, source_ref="CLK-1", accused_staff_id="S9")
    return routed_case(complaint)


async def test_an_open_case_is_watched_escalated_as_the_clock_passes_and_let_go_when_found() -> (
    None
):
    documents, topics, clock = MemoryDocuments(), Topics(), Clock()
    opened = _case(datetime(2026, 9, 1, 2, 0, tzinfo=UTC))
    watched = EscalationStore(documents).watched
    clock.now = opened.deadline - timedelta(days=1)
    running = escalation(documents, topics, clock)

    await running.file_cases([opened])
    assert set(await watched.find()) == {f"case:{opened.case_id}"}
    await running.recheck_watched()
    assert topics.decisions == []

    clock.now = opened.deadline + timedelta(hours=1)
    await running.recheck_watched()
    (head,) = topics.decisions
    assert (head.escalate_to, head.as_of, head.decided_at) == (
        EscalationTarget.DEPARTMENT_HEAD,
        opened.deadline,
        clock.now,
    )

    found_at = opened.deadline + timedelta(days=8)
    found = record_finding(
        opened, finding(["S9"], opened.case_id, on=found_at.isoformat()), now=found_at
    )
    clock.now = opened.deadline + timedelta(days=30)
    # Both revisions in one batch, the later first: the file keeps the latest.
    await running.file_cases([found, opened])
    assert await watched.find() == {}
    loaded = await kept(documents, SubjectKind.CASE, opened.case_id)
    assert loaded.value.file.case == found
    # Judged as of the revision (its finding came after the leadership group's due date).
    assert [d.escalate_to for d in topics.decisions] == [
        EscalationTarget.DEPARTMENT_HEAD,
        EscalationTarget.LEADERSHIP_GROUP,
    ]


async def test_a_case_is_not_judged_by_the_clock_while_case_revisions_wait_unread() -> None:
    """Its next revision, still in the topic (a lag, a replay), may record a finding made in
    time: the periodic check leaves cases alone until every revision published is read."""
    documents, topics, clock, cases = MemoryDocuments(), Topics(), Clock(), CasesTopic()
    opened = _case(datetime(2026, 9, 1, 2, 0, tzinfo=UTC))
    running = escalation(documents, topics, clock, cases)
    await running.file_cases([opened])
    await running.file_events([finding([], CASE_2, on="2025-01-15T11:00:00+08:00", company="YX-1")])
    clock.now = datetime(2028, 1, 15, tzinfo=UTC)  # the case overdue, the cut-off over

    cases.all_read = False
    await running.recheck_watched()
    assert {d.kind for d in topics.decisions} == {
        DecisionKind.VENDOR_CUTOFF,
        DecisionKind.ESCALATION,  # to the regulator
        DecisionKind.VENDOR_CUTOFF_LIFTED,
    }
    assert not topics.on(opened.case_id)

    cases.all_read = True
    await running.recheck_watched()
    assert len(topics.on(opened.case_id)) == 2  # to the head, to the leadership group


async def test_a_cut_off_company_is_watched_until_the_cut_off_is_lifted() -> None:
    documents, topics, clock = MemoryDocuments(), Topics(), Clock()
    running = escalation(documents, topics, clock)
    watched = EscalationStore(documents).watched
    await running.file_events([finding([], CASE_2, on="2025-01-15T11:00:00+08:00", company="YX-1")])
    assert set(await watched.find()) == {"company:YX-1"}

    clock.now = datetime(2028, 1, 15, tzinfo=UTC)
    await running.recheck_watched()
    assert DecisionKind.VENDOR_CUTOFF_LIFTED in {d.kind for d in topics.decisions}
    assert await watched.find() == {}


async def test_leads_are_kept_once_and_published_on_every_delivery() -> None:
    documents, topics = MemoryDocuments(), Topics()
    rating = accepted(
        "satisfaction",
        "SAT-1",
        occurred_at="2026-11-21T16:00:00+08:00",
        touchpoint="discharge",
        department="cardiology",
        staff_id="S1",
        score=1,
        comment=None,
    )
    events: list[Event] = [rating, visit("YX-1", "V-1"), visit("YX-1", "V-1")]

    await escalation(documents, topics).raise_leads(events)
    await escalation(documents, topics).raise_leads(events[:1])

    ids = [lead.event_id for lead in topics.leads]
    assert len(set(ids)) == 2
    assert len(ids) == 4  # the visit delivered twice in its batch, the rating again
    stored = await EscalationStore(documents).leads.find()
    assert set(stored) == {str(i) for i in ids}
