"""Escalation against the real Kafka broker and MongoDB-wire store: what the rules decide reaches
the decisions and leads topics, late events are corrected in the open, the clock escalates
overdue cases, a replay rebuilds the same conduct files, and the tools around it work.

Escalation reads the shared fact topics from the earliest offset, so every escalation here has
its own database and consumer group, and each test recognises its own subjects by fresh staff
ids, company codes, case ids and source references.
"""

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintCategory
from schemas.decision import Decision, DecisionKind, EscalationTarget, SubjectKind
from schemas.finding import InvestigationFindingReceived
from schemas.lead import Lead
from schemas.promotion import PromotionApplicationReceived
from services.common.broker import ensure_topics
from services.common.consuming import subscriber_group
from services.common.documents import MongoDocuments, Versioned
from services.common.store import Document
from services.escalation.conduct import ConductFile, same_decision, subject_key, subjects_of
from services.escalation.filing import Escalation
from services.escalation.main import create_app
from services.escalation.rulebook import RuleBook
from services.escalation.rules import evaluate
from services.escalation.settings import EscalationSettings
from services.escalation.store import EscalationStore, KeptFile
from services.router.domain import record_finding
from tests.conftest import InfraSettings
from tests.factories import complaint_event, routed_case
from tests.integration.intake_app import intake_settings, running_intake
from tests.integration.kafka_reading import Positions, end_offsets
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "services" / "escalation" / "rules.toml"
ESCALATION_INPUTS = (
    topics.COMPLAINTS,
    topics.INVESTIGATION_FINDINGS,
    topics.PROMOTION_APPLICATIONS,
    topics.PRESCRIPTION_RANKINGS,
    topics.RED_ENVELOPE_SURRENDERS,
    topics.VISITOR_LOGS,
    topics.SATISFACTION_RATINGS,
    topics.RECTIFICATION_STATUSES,
    topics.CASES,
)
"""The topics escalation consumes."""
OUTPUTS = (topics.DECISIONS, topics.LEADS)

TOUCHED: set[tuple[SubjectKind, str]] = set()
"""Every subject this module's tests gave escalation to file; the rebuild compares them all."""


def fresh(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def new_case_id() -> str:
    return f"CASE-{uuid.uuid4().hex[:20].upper()}"


def touch(kind: SubjectKind, subject_id: str) -> str:
    TOUCHED.add((kind, subject_id))
    return subject_id


# --- Input events -----------------------------------------------------------------------------


def accepted(event_type: str, **facts: Any) -> Event:
    """An event as intake accepts and publishes it."""
    kind = BY_TYPE[event_type]
    submission = kind.submission.model_validate(
        {"source_system": "escalation_test", "source_ref": fresh("ESC-"), **facts}
    )
    return kind.event.accept(submission, received_at=datetime.now(UTC))


def finding_event(
    staff: str, case_id: str, *, on: str, categories: Iterable[str] = ("attitude",)
) -> InvestigationFindingReceived:
    event = accepted(
        "investigation_finding",
        occurred_at=on,
        case_id=case_id,
        substantiated=True,
        confirmed_categories=list(categories),
        staff_ids=[staff],
        summary="经调查查实。",
    )
    assert isinstance(event, InvestigationFindingReceived)
    return event


def application_event(staff: str, application_id: str, *, on: str) -> PromotionApplicationReceived:
    event = accepted(
        "promotion_application",
        occurred_at=on,
        staff_id=staff,
        application_id=application_id,
        target_position="副主任医师",
    )
    assert isinstance(event, PromotionApplicationReceived)
    return event


def ward_visit(company: str, *, at: str, recorded: str | None = None) -> Event:
    """A rep's visit to a ward without an appointment: a lead, and a removal alert."""
    return accepted(
        "visitor_log",
        occurred_at=recorded or at,
        rep_id=fresh("REP-"),
        rep_name="王某",
        company_code=company,
        company_name="某医药公司",
        department="cardiology",
        place_code="W3-12",
        place_kind="ward",
        started_at=at,
    )


def with_finding(case: CaseUpdated, *, at: datetime) -> CaseUpdated:
    """The case as the router publishes it once a substantiated finding dated ``at`` is in."""
    finding = finding_event(case.accused_staff_id or "", case.case_id, on=at.isoformat())
    return record_finding(case, finding, now=at)


class Inputs:
    """Publishes events as intake and the router do: acks=all, on their topics, with their keys."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, *events: Event | CaseUpdated) -> None:
        """All sent before any is waited for, as a producer batch: the records are in their
        topics together, as when escalation reads them late or replays them (in order on each
        key)."""
        sent = []
        for event in events:
            if isinstance(event, CaseUpdated):
                topic, key = topics.CASES, event.case_id.encode()
            else:
                kind = BY_TYPE[event.event_type]  # type: ignore[attr-defined]
                topic, key = kind.topic, kind.key(event)
            sent.append(await self.producer.send(topic, event.model_dump_json().encode(), key=key))
        await asyncio.gather(*sent)


# --- What escalation publishes and stores -----------------------------------------------------


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes


@dataclass
class OutputFeed:
    """Every record published on the decisions and leads topics since the module started, read
    in the background without a consumer group."""

    bootstrap: str
    records: list[Output] = field(default_factory=list)

    async def run(self, start: dict[str, Positions]) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, number)
                for topic, positions in start.items()
                for number in positions
            ]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, start[tp.topic][tp.partition])
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for tp, messages in batches.items():
                    self.records += [Output(tp.topic, m.key, m.value) for m in messages]
        finally:
            await consumer.stop()

    def decisions(self, subject_id: str) -> list[Decision]:
        """The decisions published on a subject (keyed by its id), in publication order."""
        return [
            Decision.model_validate_json(record.value)
            for record in self.records
            if record.topic == topics.DECISIONS and record.key == subject_id.encode()
        ]

    def leads(self, source: Event) -> list[Lead]:
        """The leads published for a source event (keyed by its id)."""
        return [
            Lead.model_validate_json(record.value)
            for record in self.records
            if record.topic == topics.LEADS and record.key == source.event_id.bytes
        ]

    async def decision(
        self, subject_id: str, match: Callable[[Decision], bool], *, what: str
    ) -> Decision:
        """The first decision on ``subject_id`` that matches, once it is published."""
        await eventually(
            lambda: any(match(d) for d in self.decisions(subject_id)), within=45, what=what
        )
        return next(d for d in self.decisions(subject_id) if match(d))

    async def lead(self, source: Event, *, what: str) -> Lead:
        await eventually(lambda: bool(self.leads(source)), within=45, what=what)
        return self.leads(source)[0]


def keyed(key: str) -> Callable[[Decision], bool]:
    return lambda decision: decision.key == key


def distinct(decisions: Iterable[Decision]) -> dict[uuid.UUID, Decision]:
    """By event id: a redelivered event may publish the same decision twice, with its id."""
    return {decision.event_id: decision for decision in decisions}


@dataclass(frozen=True)
class StoredFile:
    """A conduct file as escalation keeps it: its events, the decisions published on it by
    key, its revision (0: never saved)."""

    file: ConductFile
    emitted: dict[str, Decision]
    revision: int

    @classmethod
    def of(cls, kind: SubjectKind, subject_id: str, loaded: Versioned[KeptFile]) -> "StoredFile":
        blank = ConductFile(subject_kind=kind, subject_id=subject_id)
        kept = loaded.value or KeptFile(file=blank)
        return cls(kept.file, kept.by_key(), loaded.revision)


def store_of(db: AsyncDatabase[Document]) -> EscalationStore:
    return EscalationStore(MongoDocuments(db))


@dataclass
class RunningEscalation:
    app: FastAPI
    settings: EscalationSettings
    db: AsyncDatabase[Document]

    @property
    def group(self) -> str:
        return self.settings.consumer_group("escalation")

    async def stored(self, kind: SubjectKind, subject_id: str) -> StoredFile:
        loaded = await store_of(self.db).files.load(subject_key(kind, subject_id))
        return StoredFile.of(kind, subject_id, loaded)

    async def is_watched(self, kind: SubjectKind, subject_id: str) -> bool:
        watched = await store_of(self.db).watched.get(subject_key(kind, subject_id))
        return watched is not None

    async def watch_settles(self, kind: SubjectKind, subject_id: str, *, watched: bool) -> None:
        """Wait until the subject is (or is no longer) looked at by the periodic check. A check
        that read the file just before its last change may set the watch from that, until its
        next round."""

        async def settled() -> bool:
            return await self.is_watched(kind, subject_id) is watched

        await eventually(settled, within=10, what=f"{kind}:{subject_id} watched={watched}")

    async def filed(self, kind: SubjectKind, subject_id: str, *events: Event) -> StoredFile:
        """The subject's file once it holds ``events``."""
        wanted = {event.event_id for event in events}

        async def holds() -> bool:
            stored = await self.stored(kind, subject_id)
            return wanted <= {event.event_id for event in stored.file.events}

        await eventually(holds, within=45, what=f"{kind}:{subject_id} to hold {len(wanted)} events")
        return await self.stored(kind, subject_id)

    async def lag(self) -> int:
        """Records of escalation's input topics its consumers have not yet committed."""
        bootstrap = self.settings.kafka_bootstrap
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            done: dict[TopicPartition, int] = {}
            for topic in ESCALATION_INPUTS:
                group = subscriber_group(self.group, topic)
                committed = await admin.list_consumer_group_offsets(group)
                done |= {tp: max(meta.offset, 0) for tp, meta in committed.items()}
            described = await admin.describe_topics(list(ESCALATION_INPUTS))
        finally:
            await admin.close()
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            ends = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        return sum(max(end - done.get(tp, 0), 0) for tp, end in ends.items())

    async def caught_up(self, *, within: float = 90.0) -> None:
        async def no_lag() -> bool:
            return await self.lag() == 0

        await eventually(no_lag, within=within, what=f"{self.group}.* to commit every input")


@dataclass
class SettableClock:
    """Escalation's clock: the real time unless a test sets it."""

    fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed if self.fixed is not None else datetime.now(UTC)


def escalation_settings(infra: InfraSettings, run: str) -> EscalationSettings:
    return EscalationSettings(
        http_port=0,
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        mongo_db=f"escalation_{run}",
        kafka_group_prefix=f"escalation-{run}-",
        clock_check_seconds=0.2,
        retry_backoff_max_seconds=0.5,
    )


@asynccontextmanager
async def running_escalation(
    settings: EscalationSettings,
    mongo: AsyncMongoClient[Document],
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[RunningEscalation]:
    """Escalation in this process, started and stopped through its lifespan; its database is
    dropped afterwards."""
    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    try:
        async with app.router.lifespan_context(app):
            yield RunningEscalation(app=app, settings=settings, db=mongo[settings.mongo_db])
    finally:
        await mongo.drop_database(settings.mongo_db)


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def mongo(infra: InfraSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="module")
async def feed(infra: InfraSettings) -> AsyncIterator[OutputFeed]:
    await ensure_topics(infra, topics.ALL)
    start = {topic: await end_offsets(infra.kafka_bootstrap, topic) for topic in OUTPUTS}
    output_feed = OutputFeed(infra.kafka_bootstrap)
    task = asyncio.create_task(output_feed.run(start))
    try:
        yield output_feed
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
async def inputs(infra: InfraSettings) -> AsyncIterator[Inputs]:
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield Inputs(producer)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture(scope="module")
async def escalation(
    infra: InfraSettings,
    mongo: AsyncMongoClient[Document],
    feed: OutputFeed,
    clock: SettableClock,
) -> AsyncIterator[RunningEscalation]:
    """The escalation every test here shares (each with its own subjects), on a settable clock
    looked at every 0.2 s."""
    settings = escalation_settings(infra, uuid.uuid4().hex[:10])
    async with running_escalation(settings, mongo, clock) as running:
        yield running


# --- The whole chain through intake ---------------------------------------------------------


async def test_a_finding_posted_to_intake_bars_promotion_for_two_years(
    infra: InfraSettings, unique: str, escalation: RunningEscalation, feed: OutputFeed
) -> None:
    staff = touch(SubjectKind.STAFF, fresh("S-"))
    case_id = new_case_id()
    settings = intake_settings(infra, unique)
    try:
        async with running_intake(settings) as intake:
            discipline, hr = await intake.key_for("discipline_office"), await intake.key_for("hr")
            answer = await intake.post(
                "/v1/investigation-findings",
                {
                    "source_system": "discipline_office",
                    "source_ref": fresh("FND-"),
                    "occurred_at": "2024-03-10T10:00:00+08:00",
                    "case_id": case_id,
                    "substantiated": True,
                    "confirmed_categories": ["attitude"],
                    "staff_ids": [staff],
                    "summary": "查实服务态度恶劣，辱骂患者。",
                },
                key=discipline,
            )
            assert answer.status_code == 202, answer.text
            finding_id = uuid.UUID(answer.json()["event_id"])

            bar = await feed.decision(
                staff, lambda d: d.kind is DecisionKind.PROMOTION_BAR, what="the promotion bar"
            )
            assert (bar.rule_id, bar.case_id) == ("R-PROMO-2Y", case_id)
            assert (bar.in_force_from, bar.in_force_until) == (date(2024, 3, 10), date(2026, 3, 9))
            assert bar.source_event_ids == (finding_id,)

            # Hospital days: 23:30 on the bar's last day is refused, 00:30 the next day (16:30
            # UTC the day before) is allowed. An HR id may contain dots (a Code allows them).
            applications = {
                fresh("HR-"): ("2025-06-01T09:00:00+08:00", False),
                fresh("HR.LAST."): ("2026-03-09T23:30:00+08:00", False),
                fresh("HR.NEXT."): ("2026-03-10T00:30:00+08:00", True),
            }
            event_ids = {}
            for application_id, (on, _) in applications.items():
                answer = await intake.post(
                    "/v1/promotion-applications",
                    {
                        "source_system": "hr",
                        "source_ref": application_id,
                        "occurred_at": on,
                        "staff_id": staff,
                        "application_id": application_id,
                        "target_position": "主治医师",
                    },
                    key=hr,
                )
                assert answer.status_code == 202, answer.text
                event_ids[application_id] = uuid.UUID(answer.json()["event_id"])
    finally:
        await escalation.db.client.drop_database(settings.mongo_db)

    for application_id, (_, allowed) in applications.items():
        decision = await feed.decision(
            staff, keyed(f"R-PROMO-2Y:application:{application_id}"), what=application_id
        )
        assert decision.kind is DecisionKind.PROMOTION_DECISION
        assert decision.allowed is allowed, decision.explanation_en
        assert decision.source_event_ids == (event_ids[application_id],)
        assert decision.corrects is None
        if allowed:
            assert (decision.case_id, decision.in_force_until) == (None, None)
            assert "准予" in decision.explanation_zh
        else:
            assert (decision.case_id, decision.in_force_until) == (case_id, date(2026, 3, 9))
            assert case_id in decision.explanation_zh
            assert "2026-03-09" in decision.explanation_zh
            assert "不予" in decision.explanation_zh

    stored = await escalation.stored(SubjectKind.STAFF, staff)
    assert {d.key for d in stored.emitted.values()} == {
        f"R-PROMO-2Y:case:{case_id}",
        *(f"R-PROMO-2Y:application:{a}" for a in applications),
    }
    assert all(d.subject_id == staff for d in feed.decisions(staff))


# --- Late events ------------------------------------------------------------------------------


async def test_a_late_finding_corrects_the_promotion_decision_in_the_open(
    escalation: RunningEscalation, feed: OutputFeed, inputs: Inputs
) -> None:
    staff = touch(SubjectKind.STAFF, fresh("S-"))
    case_id = new_case_id()
    application = application_event(staff, fresh("HR-"), on="2026-05-20T10:00:00+08:00")
    key = f"R-PROMO-2Y:application:{application.application_id}"

    await inputs.publish(application)
    first = await feed.decision(staff, lambda d: d.key == key, what="the first decision")
    assert first.allowed is True

    # Recorded now, dated before the application: the application was barred all along.
    finding = finding_event(staff, case_id, on="2025-09-01T15:00:00+08:00", categories=["gambling"])
    await inputs.publish(finding)
    correction = await feed.decision(
        staff, lambda d: d.key == key and d.corrects is not None, what="the correction"
    )

    assert correction.corrects == first.event_id
    assert correction.event_id != first.event_id
    assert correction.allowed is False
    assert (correction.case_id, correction.in_force_until) == (case_id, date(2027, 8, 31))
    assert correction.source_event_ids == (application.event_id,)
    assert not correction.withdrawn
    # Both decisions stay on the topic, under the staff member's key, in order.
    on_topic = distinct(d for d in feed.decisions(staff) if d.key == key)
    assert list(on_topic) == [first.event_id, correction.event_id]

    stored = await escalation.filed(SubjectKind.STAFF, staff, application, finding)
    # The store keeps the decision that stands for each key; it names the one it corrected.
    assert stored.emitted[key] == correction
    assert stored.emitted[f"R-PROMO-2Y:case:{case_id}"].kind is DecisionKind.PROMOTION_BAR
    assert len(stored.emitted) == 2

    # Redelivering the finding changes nothing and publishes nothing new.
    await inputs.publish(finding)
    await inputs.publish(application)
    await escalation.caught_up()
    assert distinct(d for d in feed.decisions(staff) if d.key == key).keys() == on_topic.keys()
    again = await escalation.stored(SubjectKind.STAFF, staff)
    assert (again.file, again.emitted) == (stored.file, stored.emitted)


# --- The clock --------------------------------------------------------------------------------


async def test_an_overdue_case_is_escalated_by_the_periodic_check_as_the_clock_moves(
    escalation: RunningEscalation, feed: OutputFeed, inputs: Inputs, clock: SettableClock
) -> None:
    received = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
    overdue = routed_case(
        complaint_event(
            received_at=received, source_ref=fresh("CLK-"), accused_staff_id=fresh("S-")
        )
    )
    in_time = routed_case(
        complaint_event(
            received_at=received, source_ref=fresh("CLK-"), accused_staff_id=fresh("S-")
        )
    )
    touch(SubjectKind.CASE, overdue.case_id)
    touch(SubjectKind.CASE, in_time.case_id)
    deadline = overdue.deadline
    assert in_time.deadline == deadline
    found_in_time = with_finding(in_time, at=deadline - timedelta(days=2))
    assert found_in_time.revision == 2

    def escalations(case: CaseUpdated) -> list[EscalationTarget | None]:
        return [d.escalate_to for d in distinct(feed.decisions(case.case_id)).values()]

    try:
        clock.fixed = deadline - timedelta(days=1)
        await inputs.publish(overdue, in_time, found_in_time)

        async def both_filed() -> bool:
            first = await escalation.stored(SubjectKind.CASE, overdue.case_id)
            second = await escalation.stored(SubjectKind.CASE, in_time.case_id)
            return first.file.case == overdue and second.file.case == found_in_time

        await eventually(both_filed, within=45, what="both cases filed")
        await escalation.watch_settles(SubjectKind.CASE, overdue.case_id, watched=True)
        await escalation.watch_settles(SubjectKind.CASE, in_time.case_id, watched=False)
        assert (await escalation.stored(SubjectKind.CASE, overdue.case_id)).emitted == {}

        clock.fixed = deadline + timedelta(hours=1)
        head = await feed.decision(
            overdue.case_id,
            lambda d: d.escalate_to is EscalationTarget.DEPARTMENT_HEAD,
            what="the escalation to the department head",
        )
        assert (head.rule_id, head.kind) == ("R-EVERY-COMPLAINT", DecisionKind.ESCALATION)
        assert (head.subject_kind, head.case_id) == (SubjectKind.CASE, overdue.case_id)
        assert head.as_of == deadline
        assert head.decided_at == clock.fixed
        assert "科室负责人" in head.explanation_zh
        assert escalations(overdue) == [EscalationTarget.DEPARTMENT_HEAD]

        clock.fixed = deadline + timedelta(days=7, hours=1)
        group = await feed.decision(
            overdue.case_id,
            lambda d: d.escalate_to is EscalationTarget.LEADERSHIP_GROUP,
            what="the escalation to the leadership group",
        )
        assert group.as_of == deadline + timedelta(days=7)
        assert "领导小组" in group.explanation_zh
        assert escalations(overdue) == [
            EscalationTarget.DEPARTMENT_HEAD,
            EscalationTarget.LEADERSHIP_GROUP,
        ]

        # A finding recorded late: no longer watched, and the escalations stand.
        found_late = with_finding(overdue, at=deadline + timedelta(days=8))
        clock.fixed = deadline + timedelta(days=30)
        await inputs.publish(found_late)

        async def late_finding_filed() -> bool:
            stored = await escalation.stored(SubjectKind.CASE, overdue.case_id)
            return stored.file.case == found_late

        await eventually(late_finding_filed, within=45, what="the late finding filed")
        await escalation.watch_settles(SubjectKind.CASE, overdue.case_id, watched=False)
        stored = await escalation.stored(SubjectKind.CASE, overdue.case_id)
        assert [(d.escalate_to, d.withdrawn) for d in stored.emitted.values()] == [
            (EscalationTarget.DEPARTMENT_HEAD, False),
            (EscalationTarget.LEADERSHIP_GROUP, False),
        ]
        assert not any(d.withdrawn for d in feed.decisions(overdue.case_id))

        # The case found in time: nothing, however far the clock went.
        assert feed.decisions(in_time.case_id) == []
        assert (await escalation.stored(SubjectKind.CASE, in_time.case_id)).emitted == {}
    finally:
        clock.fixed = None


async def test_a_case_found_in_time_is_never_escalated_even_when_read_after_its_deadline(
    escalation: RunningEscalation, feed: OutputFeed, inputs: Inputs
) -> None:
    received = datetime.now(UTC) - timedelta(days=60)
    opened = routed_case(
        complaint_event(
            received_at=received, source_ref=fresh("LAG-"), accused_staff_id=fresh("S-")
        )
    )
    touch(SubjectKind.CASE, opened.case_id)
    found = with_finding(opened, at=opened.deadline - timedelta(days=2))
    await inputs.publish(opened, found)

    async def filed() -> bool:
        return (await escalation.stored(SubjectKind.CASE, opened.case_id)).file.case == found

    await eventually(filed, within=45, what="the case with its finding filed")
    stored = await escalation.stored(SubjectKind.CASE, opened.case_id)
    await escalation.watch_settles(SubjectKind.CASE, opened.case_id, watched=False)
    # What was published on the case, withdrawals included (saved after publishing).
    assert [(d.escalate_to, d.withdrawn) for d in stored.emitted.values()] == []


# --- Leads ------------------------------------------------------------------------------------


async def test_breaches_become_leads_and_a_rep_in_a_ward_is_to_be_removed(
    escalation: RunningEscalation, feed: OutputFeed, inputs: Inputs
) -> None:
    company = touch(SubjectKind.COMPANY, fresh("YX-"))
    visit = ward_visit(
        company, at="2026-11-18T10:00:00+08:00", recorded="2026-11-18T10:05:00+08:00"
    )
    late_staff = touch(SubjectKind.STAFF, fresh("S-"))
    late = accepted(
        "red_envelope_surrender",
        occurred_at="2026-11-20T09:00:00+08:00",
        staff_id=late_staff,
        amount_cny="2000.00",
        received_on="2026-11-05",
        surrendered_on="2026-11-20",
    )
    in_time_staff = touch(SubjectKind.STAFF, fresh("S-"))
    in_time = accepted(
        "red_envelope_surrender",
        occurred_at="2026-11-20T09:00:00+08:00",
        staff_id=in_time_staff,
        amount_cny="500.00",
        received_on="2026-11-13",
        surrendered_on="2026-11-20",
    )
    rated_staff = fresh("S-")
    rating = accepted(
        "satisfaction",
        occurred_at="2026-11-21T16:00:00+08:00",
        touchpoint="discharge",
        department="cardiology",
        staff_id=rated_staff,
        score=5,
        comment="醫生收了我們的紅 包，態度倒是很好",
    )
    await inputs.publish(visit, late, in_time, rating)

    lead = await feed.lead(visit, what="the visit's lead")
    assert (lead.rule_id, lead.case_kind, lead.company_code) == (
        "R-REP-VISIT",
        "rep_visit",
        company,
    )
    assert lead.concerned_department == "cardiology"
    assert "无预约" in lead.explanation_zh
    assert "病房" in lead.explanation_zh
    alert = await feed.decision(
        company, lambda d: d.kind is DecisionKind.REMOVAL_ALERT, what="the removal alert"
    )
    assert (alert.rule_id, alert.subject_kind) == ("R-REP-VISIT", SubjectKind.COMPANY)
    assert alert.source_event_ids == (visit.event_id,)
    assert "驱离" in alert.explanation_zh

    lead = await feed.lead(late, what="the late surrender's lead")
    assert (lead.rule_id, lead.category, lead.accused_staff_id) == (
        "R-SURRENDER",
        ComplaintCategory.RED_ENVELOPE,
        late_staff,
    )
    recorded = await feed.decision(
        in_time_staff,
        lambda d: d.kind is DecisionKind.SURRENDER_RECORDED,
        what="the surrender recorded",
    )
    assert recorded.source_event_ids == (in_time.event_id,)

    lead = await feed.lead(rating, what="the rating's lead")
    assert (lead.rule_id, lead.category, lead.channel) == (
        "R-SATISFACTION-LEAD",
        ComplaintCategory.RED_ENVELOPE,
        "satisfaction_lead",
    )
    assert lead.accused_staff_id == rated_staff

    await escalation.caught_up()
    # The late surrender is a lead, not a surrender recorded; the in-time one raises no lead.
    late_file = await escalation.filed(SubjectKind.STAFF, late_staff, late)
    assert late_file.emitted == {}
    assert feed.decisions(late_staff) == []
    assert feed.leads(in_time) == []
    kept = await store_of(escalation.db).leads.find()
    for source in (visit, late, rating):
        (published,) = {lead.event_id: lead for lead in feed.leads(source)}.values()
        assert kept[str(published.event_id)] == published


# --- Rebuild ----------------------------------------------------------------------------------


def in_force(stored: StoredFile) -> dict[str, Decision]:
    return {key: d for key, d in stored.emitted.items() if not d.withdrawn}


def comparable(stored: StoredFile) -> tuple[Any, ...]:
    """What a replay must rebuild: the events (in any order), the case, and what each decision
    in force says (its id aside: see ``same_ids``).

    A replay judges each old revision of a case by today's clock, so it may publish and
    withdraw escalations the first instance never made (see the expected failure above):
    withdrawn decisions are left out.
    """
    file = stored.file
    said = {
        key: d.model_dump(mode="json", exclude={"event_id", "decided_at", "corrects"})
        for key, d in in_force(stored).items()
    }
    return ({e.event_id: e for e in file.events}, file.case, said)


def same_ids(first: StoredFile, second: StoredFile) -> bool:
    """Whether the decisions in force have the same ids where neither corrects another.

    A correction's id names the decision it corrected, and whether a decision was first
    published and then corrected depends on the order in which the topics were read.
    """
    ours, theirs = in_force(first), in_force(second)
    return all(
        ours[key].event_id == theirs[key].event_id
        for key in ours.keys() & theirs.keys()
        if ours[key].corrects is None and theirs[key].corrects is None
    )


async def test_a_new_instance_replaying_the_topics_rebuilds_the_same_conduct_files(
    infra: InfraSettings,
    mongo: AsyncMongoClient[Document],
    escalation: RunningEscalation,
    inputs: Inputs,
) -> None:
    # Its own subjects, so the test stands alone; with the others, every file of the module.
    staff = touch(SubjectKind.STAFF, fresh("S-"))
    company = touch(SubjectKind.COMPANY, fresh("YX-"))
    case_id = new_case_id()
    finding = accepted(
        "investigation_finding",
        occurred_at="2025-01-15T11:00:00+08:00",
        case_id=case_id,
        substantiated=True,
        confirmed_categories=["kickback"],
        staff_ids=[staff],
        confirmed_amount_cny="32000.00",
        company_code=company,
        company_name="某器械公司",
        summary="查实收受回扣三万二千元。",
    )
    application = application_event(staff, fresh("HR-"), on="2026-02-01T09:00:00+08:00")
    visit = accepted(
        "visitor_log",
        occurred_at="2026-11-17T15:00:00+08:00",
        rep_id=fresh("REP-"),
        rep_name="李某",
        company_code=company,
        company_name="某器械公司",
        department="orthopedics",
        place_code="R-1",
        place_kind="reception_room",
        started_at="2026-11-17T15:00:00+08:00",
        appointment_id=fresh("APT-"),
    )
    await inputs.publish(finding, application, visit)
    await escalation.filed(SubjectKind.STAFF, staff, finding, application)
    await escalation.filed(SubjectKind.COMPANY, company, finding, visit)
    await escalation.caught_up()
    assert TOUCHED

    settings = escalation_settings(infra, uuid.uuid4().hex[:10])
    assert settings.kafka_group_prefix != escalation.settings.kafka_group_prefix
    async with running_escalation(settings, mongo) as rebuilt:
        await rebuilt.caught_up()
        for kind, subject_id in sorted(TOUCHED):
            first = await escalation.stored(kind, subject_id)
            second = await rebuilt.stored(kind, subject_id)
            assert first.revision > 0, f"{kind}:{subject_id} was never filed"
            assert comparable(second) == comparable(first), f"{kind}:{subject_id}"
            assert same_ids(first, second), f"{kind}:{subject_id}"

    company_file = await escalation.stored(SubjectKind.COMPANY, company)
    assert {d.kind for d in company_file.emitted.values()} == {
        DecisionKind.VENDOR_CUTOFF,
        DecisionKind.ESCALATION,  # to the regulator
        DecisionKind.REMOVAL_ALERT,  # a rep of a cut-off company
    }
    staff_file = await escalation.stored(SubjectKind.STAFF, staff)
    assert {d.escalate_to for d in staff_file.emitted.values() if d.escalate_to} == {
        EscalationTarget.SUPERIOR_HEALTH_AUTHORITY,
        EscalationTarget.JUDICIAL_ORGANS,
    }


# --- Concurrent writers -----------------------------------------------------------------------


@dataclass
class Published:
    """Stands in for the topics: what the application layer published, in order."""

    decisions: list[Decision] = field(default_factory=list)

    async def __call__(self, decisions: Sequence[Decision]) -> None:
        self.decisions += decisions


async def no_leads(leads: Sequence[Lead]) -> None:
    raise AssertionError("no lead expected")


async def every_case_read() -> bool:
    return True


def application_layer(db: AsyncDatabase[Document], publish: Published) -> Escalation:
    return Escalation(
        store_of(db),
        RuleBook.from_file(RULES),
        clock=lambda: datetime.now(UTC),
        publish_decisions=publish,
        publish_leads=no_leads,
        cases_all_read=every_case_read,
    )


async def test_concurrent_changes_to_one_conduct_file_are_all_kept(
    store: AsyncDatabase[Document],
) -> None:
    """Handlers of several topics and the periodic check may change one file at once; FerretDB
    must not let two of them save over the same revision."""
    published = Published()
    staff = fresh("S-")
    complaints = [
        complaint_event(source_ref=fresh("RACE-"), accused_staff_id=staff) for _ in range(20)
    ]

    await asyncio.gather(
        *(application_layer(store, published).file_events([c]) for c in complaints),
        *(application_layer(store, published).recheck_watched() for _ in range(5)),
    )

    stored = StoredFile.of(
        SubjectKind.STAFF, staff, await store_of(store).files.load(f"staff:{staff}")
    )
    assert sorted(e.event_id for e in stored.file.events) == sorted(c.event_id for c in complaints)
    assert stored.revision == len(complaints)  # one revision per change, none for no change
    # What stands published is what the rules decide on the whole file.
    standing = {d.key: d for d in stored.emitted.values() if not d.withdrawn}
    decided = evaluate(stored.file, RuleBook.from_file(RULES), now=datetime.now(UTC))
    assert {d.key: d.event_id for d in decided} == {k: d.event_id for k, d in standing.items()}
    assert {d.event_id for d in published.decisions} >= {
        d.event_id for d in stored.emitted.values()
    }


async def test_only_the_last_revision_of_a_file_keeps_a_copy_and_a_stale_copy_is_overtaken(
    store: AsyncDatabase[Document],
) -> None:
    """A file grows with its events: were every revision a full copy, a company visited a few
    hundred times would hold tens of megabytes. Earlier revisions keep only their guard (the
    store adapter's ``<name>_revisions``), and a reader still finds the last revision when
    the latest copy was put back by a slow writer."""
    staff = fresh("S-")
    key = f"staff:{staff}"
    files = store_of(store).files
    complaints = [
        complaint_event(source_ref=fresh("REV-"), accused_staff_id=staff) for _ in range(4)
    ]
    copies = []
    for complaint in complaints:
        await application_layer(store, Published()).file_events([complaint])
        copies.append(await store["escalation_conduct_files"].find_one({"_id": key}))

    revisions = {}
    for n in range(1, 5):
        document = await store["escalation_conduct_files_revisions"].find_one({"_id": f"{key}@{n}"})
        assert document is not None
        revisions[n] = set(document) - {"_id"}
    assert revisions == {1: set(), 2: set(), 3: set(), 4: {"value"}}
    first_copy = copies[0]
    assert first_copy is not None
    await store["escalation_conduct_files"].replace_one({"_id": key}, first_copy)  # overtaken
    loaded = await files.load(key)
    assert loaded.revision == 4
    assert loaded.value is not None
    assert [e.event_id for e in loaded.value.file.events] == [c.event_id for c in complaints]
    # A writer that read the file two changes ago.
    assert not await files.save(key, loaded.value, over=2)


def burst(staff: list[str], companies: list[str]) -> list[Event | CaseUpdated]:
    """Events of every kind escalation files, many of them on the same few files, and cases."""
    events: list[Event | CaseUpdated] = []
    for n, person in enumerate(staff):
        company = companies[n % len(companies)]
        case_id = new_case_id()
        events += [
            application_event(person, fresh("HR-"), on=f"2026-0{1 + n % 9}-10T10:00:00+08:00"),
            accepted(
                "investigation_finding",
                occurred_at=f"2025-0{1 + n % 9}-01T10:00:00+08:00",
                case_id=case_id,
                substantiated=True,
                confirmed_categories=["kickback"],
                staff_ids=[person, staff[(n + 1) % len(staff)]],
                confirmed_amount_cny=f"{4000 * (n + 1)}.00",
                company_code=company,
                company_name="某医药公司",
                summary="查实收受回扣。",
            ),
            application_event(person, fresh("HR-"), on="2026-11-10T10:00:00+08:00"),
            *(
                complaint_event(source_ref=fresh("BURST-"), accused_staff_id=person)
                for _ in range(3)
            ),
            *(ward_visit(company, at=f"2026-11-1{day}T10:00:00+08:00") for day in range(3)),
            routed_case(  # open, not yet overdue: its file depends on the clock
                complaint_event(
                    received_at=datetime.now(UTC),
                    source_ref=fresh("BURST-CASE-"),
                    accused_staff_id=person,
                )
            ),
        ]
    return events


async def test_two_instances_in_one_consumer_group_lose_no_update(
    infra: InfraSettings,
    mongo: AsyncMongoClient[Document],
    inputs: Inputs,
    feed: OutputFeed,
    escalation: RunningEscalation,
) -> None:
    """Two instances share the topics' partitions; each topic's handler in each instance may
    change the same files at once. No event is lost from a file, what stands published on
    each file is what the rules decide on it, every such decision was published, and the
    files are those one instance alone builds from the same topics."""
    staff = [touch(SubjectKind.STAFF, fresh("S-")) for _ in range(8)]
    companies = [touch(SubjectKind.COMPANY, fresh("YX-")) for _ in range(2)]
    events = burst(staff, companies)
    cases = [event.case_id for event in events if isinstance(event, CaseUpdated)]
    for case_id in cases:
        touch(SubjectKind.CASE, case_id)
    book = RuleBook.from_file(RULES)

    settings = escalation_settings(infra, uuid.uuid4().hex[:10])
    async with (
        running_escalation(settings, mongo) as first,
        running_escalation(settings, mongo) as second,
    ):
        await inputs.publish(*events)
        await first.caught_up()
        await second.caught_up()
        subjects = [
            *((SubjectKind.STAFF, s) for s in staff),
            *((SubjectKind.COMPANY, c) for c in companies),
            *((SubjectKind.CASE, c) for c in cases),
        ]
        for kind, subject_id in subjects:
            stored = await first.stored(kind, subject_id)
            held = [e.event_id for e in stored.file.events]
            assert len(held) == len(set(held)), f"{kind}:{subject_id} holds an event twice"
            wanted = {
                e.event_id for e in events if isinstance(e, Event) and subject_id in filed_under(e)
            }
            assert set(held) == wanted, f"{kind}:{subject_id} lost an update"
            standing = in_force(stored)
            decided = {d.key: d for d in evaluate(stored.file, book, now=datetime.now(UTC))}
            if kind is not SubjectKind.CASE:  # a case is judged as of its revision
                assert standing.keys() == decided.keys(), subject_id
                for key, decision in standing.items():  # a correction names what it corrects
                    assert same_decision(decision, decided[key]), key
            on_topic = {d.event_id for d in feed.decisions(subject_id)}
            assert {d.event_id for d in stored.emitted.values()} <= on_topic, subject_id

        alone_settings = escalation_settings(infra, uuid.uuid4().hex[:10])
        async with running_escalation(alone_settings, mongo) as alone:
            await alone.caught_up()
            for kind, subject_id in subjects:
                pair = await first.stored(kind, subject_id)
                one = await alone.stored(kind, subject_id)
                assert comparable(pair) == comparable(one), f"{kind}:{subject_id}"
                assert same_ids(pair, one), f"{kind}:{subject_id}"


def filed_under(event: Event) -> set[str]:
    """The subject ids of the files an event belongs in."""
    return {blank.subject_id for blank in subjects_of(event)}  # type: ignore[arg-type]


# --- The explain tool -------------------------------------------------------------------------


async def explain(escalation: RunningEscalation, *arguments: str) -> tuple[int, str, str]:
    """Run ``python -m services.escalation.explain`` on escalation's database."""
    settings = escalation.settings
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.escalation.explain",
        *arguments,
        cwd=ROOT,
        env={
            **os.environ,
            "QINGLIAN_MONGO_URL": settings.mongo_url,
            "QINGLIAN_MONGO_DB": settings.mongo_db,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_explain_tool_answers_whether_a_staff_member_may_be_promoted(
    escalation: RunningEscalation, inputs: Inputs
) -> None:
    staff = touch(SubjectKind.STAFF, fresh("S-"))
    case_id = new_case_id()
    finding = finding_event(
        staff, case_id, on="2025-04-02T10:00:00+08:00", categories=["red_envelope"]
    )
    await inputs.publish(finding)
    await escalation.filed(SubjectKind.STAFF, staff, finding)

    unknown = fresh("S-")
    (code, out, err), as_json, not_known = await asyncio.gather(
        explain(escalation, "staff", staff, "--promotion-on", "2026-04-01"),
        explain(escalation, "staff", staff, "--promotion-on", "2027-04-02", "--json"),
        explain(escalation, "staff", unknown),
    )
    assert code == 0, err
    assert "[R-PROMO-2Y]" in out
    assert case_id in out
    assert f"{staff}于2026-04-01不得提职晋级" in out
    assert "2027-04-01" in out  # the bar's last day
    assert f"{staff} may not be promoted on 2026-04-01" in out

    code, out, err = as_json
    assert code == 0, err
    answer = json.loads(out)
    assert answer["subject"] == f"staff:{staff}"
    assert answer["promotion"]["allowed"] is True
    assert answer["promotion"]["case_id"] is None
    assert "可以提职晋级" in answer["promotion"]["explanation_zh"]
    (bar,) = answer["decisions"]
    assert (bar["rule_id"], bar["case_id"], bar["in_force_until"]) == (
        "R-PROMO-2Y",
        case_id,
        "2027-04-01",
    )
    assert [d["key"] for d in answer["published"]] == [bar["key"]]

    code, out, err = not_known
    assert code == 1
    assert out == ""
    assert f"no conduct file for staff {unknown}" in err


# --- The rule book ----------------------------------------------------------------------------


async def test_a_bad_rule_book_stops_the_service_before_it_consumes(
    infra: InfraSettings, tmp_path: Path, unique: str
) -> None:
    lines = RULES.read_text(encoding="utf-8").splitlines()
    number = lines.index("window_days = 90") + 1  # [rep_repeat]
    lines[number - 1] = 'window_days = "90"'
    bad = tmp_path / "rules.toml"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.escalation",
        cwd=ROOT,
        env={
            **os.environ,
            "QINGLIAN_RULES": str(bad),
            "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
            "QINGLIAN_MONGO_URL": infra.mongo_url,
            "QINGLIAN_MONGO_DB": f"test_{unique}",
            "QINGLIAN_KAFKA_GROUP_PREFIX": f"test-{unique}-",
            "QINGLIAN_HTTP_PORT": "8653",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = out.decode()
    assert process.returncode not in (None, 0), output
    assert f"rules.toml:{number} rep_repeat.window_days: Input should be a valid integer" in (
        output
    )
    # It stopped before connecting: none of its consumer groups ever joined.
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        groups = [str(group[0]) for group in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    assert groups
    assert not [group for group in groups if group.startswith(f"test-{unique}-")]
