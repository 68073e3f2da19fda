"""The router against the real Kafka broker and MongoDB-wire store: cases opened, changed and
published as the conduct office relies on them, whatever the order, the redeliveries, the
replays and the number of router instances.

Every router here has a database and consumer groups of its own, whose offsets are committed
at the end of the shared topics before it starts: a new group reads from the earliest records,
and what other tests left there would make each router slower than the last. Each test
recognises its own cases by fresh staff ids.
"""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from fastapi import FastAPI
from pydantic import ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from schemas import topics
from schemas.case import CaseChange, CaseState, CaseUpdated, derive_case_id
from schemas.case_action import CaseActionReceived, CaseActionSubmission
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintReceived
from schemas.finding import InvestigationFindingReceived, InvestigationFindingSubmission
from schemas.follow_up import ReporterAddition, ReporterReply
from services.common.broker import ensure_topics
from services.common.consuming import subscriber_group
from services.common.documents import MongoDocuments
from services.common.store import Document
from services.router.cases import Cases
from services.router.domain import Opening
from services.router.main import create_app
from services.router.settings import RouterSettings
from services.router.store import CaseStore
from tests.conftest import InfraSettings
from tests.factories import ROUTING, complaint_event
from tests.integration.kafka_reading import end_offsets
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
ROUTER_INPUTS = (
    topics.COMPLAINTS,
    topics.LEADS,
    topics.INVESTIGATION_FINDINGS,
    topics.CASE_ACTIONS,
    topics.REPORTER_ADDITIONS,
    topics.REPORTER_REPLIES,
)
RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
"""When intake received the complaints; the actions on a case come hours later."""
OFFICER = "S0101"
"""The conduct office's head, who takes the actions on cases."""


def fresh(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# --- Input events -----------------------------------------------------------------------------


def new_complaint(
    staff: str,
    category: str = "kickback",
    *,
    channel: str = "portal",
    department: str = "general_psychiatry",
) -> ComplaintReceived:
    return complaint_event(
        received_at=RECEIVED,
        source_ref=fresh("RT-"),
        accused_staff_id=staff,
        category=category,
        channel=channel,
        accused_department=department,
    )


def new_action(
    case_id: str, action: str, *, at: datetime, to_department: str | None = None
) -> CaseActionReceived:
    submission = CaseActionSubmission.model_validate(
        {
            "source_system": "conduct_office",
            "source_ref": fresh("ACT-"),
            "occurred_at": at,
            "case_id": case_id,
            "action": action,
            "actor_staff_id": OFFICER,
            "to_department": to_department,
            "reason": "科室负责人回避" if to_department else None,
        }
    )
    return CaseActionReceived.accept(submission, received_at=at + timedelta(minutes=1))


def new_finding(case_id: str, *, at: datetime) -> InvestigationFindingReceived:
    submission = InvestigationFindingSubmission.model_validate(
        {
            "source_system": "finance_office",
            "source_ref": fresh("FND-"),
            "occurred_at": at,
            "case_id": case_id,
            "substantiated": True,
            "confirmed_categories": ["kickback"],
            "summary": "查实收取回扣。",
        }
    )
    return InvestigationFindingReceived.accept(submission, received_at=at + timedelta(minutes=1))


def new_addition(complaint: ComplaintReceived, *, at: datetime) -> ReporterAddition:
    return ReporterAddition(
        event_id=uuid.uuid4(),
        complaint_event_id=complaint.event_id,
        text="举报人补充：还有转账记录。",
        received_at=at,
    )


def new_reply(case_id: str, *, at: datetime) -> ReporterReply:
    return ReporterReply(
        event_id=uuid.uuid4(),
        case_id=case_id,
        text="您反映的问题已受理，正在调查。",
        sent_by="conduct_office",
        sent_at=at,
    )


Input = (
    ComplaintReceived
    | CaseActionReceived
    | InvestigationFindingReceived
    | ReporterAddition
    | ReporterReply
)


def topic_and_key(event: Input) -> tuple[str, bytes]:
    """Where intake publishes an event, with the key it uses."""
    if isinstance(event, ReporterAddition):
        return topics.REPORTER_ADDITIONS, event.complaint_event_id.bytes
    if isinstance(event, ReporterReply):
        return topics.REPORTER_REPLIES, event.case_id.encode()
    kind = BY_TYPE[event.event_type]
    return kind.topic, kind.key(event)


class Inputs:
    """Publishes input events as intake does: acks=all, on their fact topics, with their keys."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, *events: Input) -> None:
        sent = []
        for event in events:
            topic, key = topic_and_key(event)
            value = event.model_dump_json().encode()
            sent.append(await self.producer.send(topic, value, key=key))
        await asyncio.gather(*sent)


# --- What the router publishes and stores -----------------------------------------------------


@dataclass
class CaseFeed:
    """Every case the router publishes from now on, read in the background without a group:
    the highest revision of each case, and every revision seen."""

    bootstrap: str
    latest: dict[str, CaseUpdated] = field(default_factory=dict)
    revisions: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    reader: asyncio.Task[None] | None = None

    async def run(self) -> None:
        positions = await end_offsets(self.bootstrap, topics.CASES)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topics.CASES, number) for number in positions]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, positions[tp.partition])
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    for message in messages:
                        self._take(message.value)
        finally:
            await consumer.stop()

    def _take(self, value: bytes) -> None:
        try:
            case = CaseUpdated.model_validate_json(value)
        except ValidationError:
            return
        self.revisions[case.case_id].append(case.revision)
        known = self.latest.get(case.case_id)
        if known is None or case.revision > known.revision:
            self.latest[case.case_id] = case

    def at_least(self, case_id: str, revision: int) -> bool:
        """Whether the case was published at ``revision`` or later."""
        if self.reader is not None and self.reader.done():
            self.reader.result()  # the reader's error rather than a wait that times out
            raise AssertionError("the case feed stopped reading")
        case = self.latest.get(case_id)
        return case is not None and case.revision >= revision

    async def reaches(self, case_id: str, revision: int, *, within: float = 30.0) -> CaseUpdated:
        """The case once it is published at ``revision`` or later."""
        await eventually(
            lambda: self.at_least(case_id, revision),
            within=within,
            what=f"{case_id} at revision {revision}",
        )
        return self.latest[case_id]

    def of_staff(self, staff: str) -> dict[str, CaseUpdated]:
        return {
            case_id: case for case_id, case in self.latest.items() if case.accused_staff_id == staff
        }


def case_store(db: AsyncDatabase[Document]) -> CaseStore:
    return CaseStore.on(MongoDocuments(db))


async def stored(db: AsyncDatabase[Document], case_id: str) -> CaseUpdated | None:
    """The case as the router's store holds it."""
    return (await case_store(db).cases.load(case_id)).value


async def waiting(db: AsyncDatabase[Document], case_id: str) -> set[str]:
    """The events whose updates wait for the case to open."""
    return set(await case_store(db).waiting.find(case_id=case_id))


async def case_of_event(db: AsyncDatabase[Document], event_id: uuid.UUID) -> str | None:
    found = await case_store(db).events.get(str(event_id))
    return None if found is None else found.case_id


async def snapshot(db: AsyncDatabase[Document]) -> dict[str, dict[str, Document]]:
    """Every document the router keeps, by collection and _id."""
    return {
        name: {str(document["_id"]): document async for document in db[name].find({})}
        for name in await db.list_collection_names()
    }


def changes(case: CaseUpdated) -> list[CaseChange]:
    return [entry.change for entry in case.history]


Positions = dict[TopicPartition, int]


async def input_ends(bootstrap: str) -> Positions:
    """Where the next record of each partition of the router's input topics will be written."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        partitions = [
            TopicPartition(described["topic"], partition["partition"])
            for described in await admin.describe_topics(list(ROUTER_INPUTS))
            for partition in described["partitions"]
        ]
        ends: Positions = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()
        await admin.close()


async def start_at(bootstrap: str, group: str, positions: Positions) -> None:
    """Commit ``positions`` for the subscribers of a router of consumer group ``group``, so
    that it starts there rather than at the earliest records: what other tests left on the
    shared topics would otherwise make each new router slower than the last."""
    for topic in ROUTER_INPUTS:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=subscriber_group(group, topic),
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partitions = [tp for tp in positions if tp.topic == topic]
            consumer.assign(partitions)
            consumer.pause(*partitions)  # nothing to fetch: only the commit
            await consumer.commit({tp: OffsetAndMetadata(positions[tp], "") for tp in partitions})
        finally:
            await consumer.stop()


async def caught_up(bootstrap: str, group: str) -> bool:
    """Whether the router of consumer group ``group`` (each of its subscribers in a group of
    its own under it) has committed every record of its input topics."""
    ends = await input_ends(bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for topic in ROUTER_INPUTS:
            committed = await admin.list_consumer_group_offsets(subscriber_group(group, topic))
            for tp, end in ends.items():
                meta = committed.get(tp)
                if tp.topic == topic and (meta.offset if meta is not None else 0) < end:
                    return False
        return True
    finally:
        await admin.close()


async def consumers(bootstrap: str, group: str) -> dict[str, tuple[str, int]]:
    """By input topic: the state of the router's subscriber group and how many are in it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = {}
        for topic in ROUTER_INPUTS:
            (response,) = await admin.describe_consumer_groups([subscriber_group(group, topic)])
            (described,) = response.groups
            found[topic] = (str(described[2]), len(described[5]))
        return found
    finally:
        await admin.close()


def counted(metrics: str, name: str) -> float:
    """The sum of a Prometheus counter over its labels, from /metrics text."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(f"{name}{{") or line.startswith(f"{name} ")
    )


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def inputs(infra: InfraSettings) -> AsyncIterator[Inputs]:
    await ensure_topics(infra, (*ROUTER_INPUTS, topics.CASES))
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        yield Inputs(producer)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
async def feed(infra: InfraSettings, inputs: Inputs) -> AsyncIterator[CaseFeed]:
    case_feed = CaseFeed(infra.kafka_bootstrap)
    case_feed.reader = task = asyncio.create_task(case_feed.run())
    try:
        yield case_feed
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
async def mongo(infra: InfraSettings) -> AsyncIterator[AsyncMongoClient[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


def router_settings(infra: InfraSettings, *, db: str, group_prefix: str) -> RouterSettings:
    return RouterSettings(
        http_port=0,
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        mongo_db=db,
        kafka_group_prefix=group_prefix,
        retry_backoff_max_seconds=1.0,
    )


@dataclass
class RunningRouter:
    app: FastAPI
    settings: RouterSettings
    db: AsyncDatabase[Document]

    @property
    def group(self) -> str:
        return self.settings.consumer_group("router")

    async def metrics(self) -> str:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            return (await client.get("/metrics")).text

    async def caught_up(self, *, within: float = 60.0) -> None:
        bootstrap = self.settings.kafka_bootstrap
        await eventually(
            lambda: caught_up(bootstrap, self.group), within=within, what=f"{self.group} lag 0"
        )


@asynccontextmanager
async def running_router(
    settings: RouterSettings, mongo: AsyncMongoClient[Document]
) -> AsyncIterator[RunningRouter]:
    """The router in this process, started and stopped through its lifespan."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield RunningRouter(app=app, settings=settings, db=mongo[settings.mongo_db])


# --- One router -------------------------------------------------------------------------------


class TestOneRouter:
    """One router instance, shared by these tests (each with its own staff and cases)."""

    @pytest.fixture(scope="class")
    @classmethod
    async def router(
        cls, infra: InfraSettings, mongo: AsyncMongoClient[Document], inputs: Inputs
    ) -> AsyncIterator[RunningRouter]:
        run = uuid.uuid4().hex[:10]
        settings = router_settings(infra, db=f"router_{run}", group_prefix=f"router-{run}-")
        start = await input_ends(infra.kafka_bootstrap)
        await start_at(infra.kafka_bootstrap, settings.consumer_group("router"), start)
        try:
            async with running_router(settings, mongo) as router:
                yield router
        finally:
            await mongo.drop_database(settings.mongo_db)

    async def test_a_complaint_is_routed_reassigned_investigated_and_closed_with_its_history(
        self, router: RunningRouter, inputs: Inputs, feed: CaseFeed
    ) -> None:
        staff = fresh("A")
        complaint = new_complaint(staff, "kickback", channel="mailbox")
        case_id = derive_case_id(complaint.event_id)

        await inputs.publish(complaint)
        case = await feed.reaches(case_id, 1)

        # 004 §四(一)1: kickbacks go to 财务部; the accused's department and, for the mailbox,
        # 纪检监察室 cooperate; the heads of the three handle it; 15 days from receipt.
        assert case.state is CaseState.ASSIGNED
        assert case.responsible_department.code == "finance"
        assert [d.code for d in case.cooperating_departments] == [
            "general_psychiatry",
            "discipline_inspection",
        ]
        assert case.handlers == ("S0201", "S1101", "S0301")
        assert case.deadline == complaint.received_at + timedelta(days=15)
        assert case.opened_at == complaint.received_at
        assert case.source_event_ids == (complaint.event_id,)
        assert case.accused_staff_id == staff
        assert case.routing_table_version == ROUTING.version

        at = complaint.received_at
        reassign = new_action(
            case_id, "reassign", at=at + timedelta(hours=1), to_department="medical_affairs"
        )
        start = new_action(case_id, "start_investigation", at=at + timedelta(hours=2))
        finding = new_finding(case_id, at=at + timedelta(days=3))
        close = new_action(case_id, "close", at=at + timedelta(days=4))
        late_start = new_action(case_id, "start_investigation", at=at + timedelta(days=5))
        steps: list[tuple[Input, CaseState]] = [
            (reassign, CaseState.ASSIGNED),
            (start, CaseState.INVESTIGATING),
            (finding, CaseState.FINDING_RECORDED),
            (close, CaseState.CLOSED),
            (late_start, CaseState.CLOSED),  # refused: the case is closed
        ]
        for revision, (event, state) in enumerate(steps, start=2):
            # One at a time, as the office works: the topics are not ordered among themselves.
            await inputs.publish(event)
            case = await feed.reaches(case_id, revision)
            assert (case.revision, case.state) == (revision, state)

        assert case.responsible_department.code == "medical_affairs"
        assert case.handlers == ("S0101", "S1101", "S0301")
        history = [
            (e.change, e.state, e.by, e.at, e.source_event_id, e.department) for e in case.history
        ]
        assert history == [
            (CaseChange.OPENED, CaseState.OPENED, "portal", at, complaint.event_id, None),
            (CaseChange.ASSIGNED, CaseState.ASSIGNED, "router", at, complaint.event_id, "finance"),
            (
                CaseChange.REASSIGNED,
                CaseState.ASSIGNED,
                OFFICER,
                reassign.occurred_at,
                reassign.event_id,
                "medical_affairs",
            ),
            (
                CaseChange.INVESTIGATION_STARTED,
                CaseState.INVESTIGATING,
                OFFICER,
                start.occurred_at,
                start.event_id,
                None,
            ),
            (
                CaseChange.FINDING_RECORDED,
                CaseState.FINDING_RECORDED,
                "finance_office",
                finding.occurred_at,
                finding.event_id,
                None,
            ),
            (CaseChange.CLOSED, CaseState.CLOSED, OFFICER, close.occurred_at, close.event_id, None),
            (
                CaseChange.REFUSED,
                CaseState.CLOSED,
                OFFICER,
                late_start.occurred_at,
                late_start.event_id,
                None,
            ),
        ]
        assert case.history[2].note == "科室负责人回避"
        assert case.history[4].note == "查实：回扣"
        assert case.history[6].note == "开始调查被拒绝：案件已结案"
        assert sorted(set(feed.revisions[case_id])) == [1, 2, 3, 4, 5, 6]  # every change
        assert await stored(router.db, case_id) == case

    async def test_updates_that_overtake_their_complaint_wait_for_its_case(
        self, router: RunningRouter, inputs: Inputs, feed: CaseFeed
    ) -> None:
        complaint, other = new_complaint(fresh("B")), new_complaint(fresh("B"))
        case_id, other_id = derive_case_id(complaint.event_id), derive_case_id(other.event_id)
        finding = new_finding(case_id, at=RECEIVED + timedelta(days=2))
        early_addition = new_addition(other, at=RECEIVED + timedelta(hours=1))

        await inputs.publish(finding, early_addition)

        expected = {case_id: {str(finding.event_id)}, other_id: {str(early_addition.event_id)}}

        async def parked() -> bool:
            return {key: await waiting(router.db, key) for key in expected} == expected

        await eventually(parked, what="the finding and the addition to wait for their cases")
        assert await stored(router.db, case_id) is None
        assert case_id not in feed.latest

        await inputs.publish(complaint, other)
        case = await feed.reaches(case_id, 2)
        assert case.state is CaseState.FINDING_RECORDED
        assert changes(case) == [
            CaseChange.OPENED,
            CaseChange.ASSIGNED,
            CaseChange.FINDING_RECORDED,
        ]
        assert case.history[-1].source_event_id == finding.event_id
        other_case = await feed.reaches(other_id, 2)
        assert other_case.state is CaseState.ASSIGNED
        assert changes(other_case)[-1] is CaseChange.REPORTER_ADDED
        assert other_case.history[-1].source_event_id == early_addition.event_id

        addition = new_addition(complaint, at=RECEIVED + timedelta(days=3))
        await inputs.publish(addition)
        case = await feed.reaches(case_id, 3)
        last = case.history[-1]
        assert (last.change, last.state, last.by, last.at, last.source_event_id) == (
            CaseChange.REPORTER_ADDED,
            CaseState.FINDING_RECORDED,
            "reporter",
            addition.received_at,
            addition.event_id,
        )
        assert await waiting(router.db, case_id) == set()  # nothing is left waiting
        assert await waiting(router.db, other_id) == set()
        assert await stored(router.db, case_id) == case

    async def test_a_finding_dated_before_its_complaint_was_received_is_refused_in_the_history(
        self, router: RunningRouter, inputs: Inputs, feed: CaseFeed
    ) -> None:
        complaint = new_complaint(fresh("D"))
        case_id = derive_case_id(complaint.event_id)
        # Sent first, so it also waits for the case: the date is judged when the case opens.
        backdated = new_finding(case_id, at=RECEIVED - timedelta(days=2))

        await inputs.publish(backdated)

        async def parked() -> bool:
            return await waiting(router.db, case_id) == {str(backdated.event_id)}

        await eventually(parked, what="the backdated finding to wait for its case")
        await inputs.publish(complaint)

        case = await feed.reaches(case_id, 2)
        last = case.history[-1]
        assert (last.change, last.source_event_id, case.state) == (
            CaseChange.REFUSED,
            backdated.event_id,
            CaseState.ASSIGNED,
        )
        assert last.note == "调查结论日期 2026-11-18 早于案件受理日期 2026-11-20，调查结论未计入"
        assert await stored(router.db, case_id) == case

    async def test_actions_sent_together_on_one_case_are_applied_in_their_order(
        self, router: RunningRouter, inputs: Inputs, feed: CaseFeed
    ) -> None:
        complaint = new_complaint(fresh("E"), "attitude")
        case_id = derive_case_id(complaint.event_id)
        await inputs.publish(complaint)
        await feed.reaches(case_id, 1)
        at = complaint.received_at
        reassign = new_action(
            case_id, "reassign", at=at + timedelta(hours=1), to_department="finance"
        )
        start = new_action(case_id, "start_investigation", at=at + timedelta(hours=2))
        close = new_action(case_id, "close", at=at + timedelta(hours=3))  # no finding yet

        await inputs.publish(reassign, start, close)  # one partition: one batch, most often

        case = await feed.reaches(case_id, 4)
        assert [(e.change, e.source_event_id) for e in case.history[2:]] == [
            (CaseChange.REASSIGNED, reassign.event_id),
            (CaseChange.INVESTIGATION_STARTED, start.event_id),
            (CaseChange.REFUSED, close.event_id),
        ]
        assert case.history[-1].note == "结案被拒绝：尚无调查结论"
        assert (case.state, case.responsible_department.code) == (
            CaseState.INVESTIGATING,
            "finance",
        )
        await router.caught_up()
        assert await stored(router.db, case_id) == case

    async def test_complaints_against_one_person_in_one_category_make_one_case(
        self, router: RunningRouter, inputs: Inputs, feed: CaseFeed
    ) -> None:
        staff = fresh("C")
        first, second = new_complaint(staff, "red_envelope"), new_complaint(staff, "red_envelope")
        elsewhere = new_complaint(staff, "attitude")

        await inputs.publish(first, second, elsewhere)

        async def all_routed() -> bool:
            found = [await case_of_event(router.db, c.event_id) for c in (first, second, elsewhere)]
            return None not in found

        await eventually(all_routed, what="the three complaints to reach their cases")
        shared_id = await case_of_event(router.db, first.event_id)
        assert shared_id is not None
        assert await case_of_event(router.db, second.event_id) == shared_id
        other_id = await case_of_event(router.db, elsewhere.event_id)
        assert other_id == derive_case_id(elsewhere.event_id)

        shared = await feed.reaches(shared_id, 2)
        assert shared_id in {derive_case_id(first.event_id), derive_case_id(second.event_id)}
        assert sorted(shared.source_event_ids) == sorted([first.event_id, second.event_id])
        assert changes(shared) == [CaseChange.OPENED, CaseChange.ASSIGNED, CaseChange.LINKED]
        assert shared.history[-1].source_event_id == shared.source_event_ids[1]
        assert shared.responsible_department.code == "medical_affairs"  # 红包: 004 §二
        other = await feed.reaches(other_id, 1)
        assert (other.source_event_ids, other.category) == ((elsewhere.event_id,), "attitude")

        # The reporter of the linked complaint adds to it: that goes to the case it is in.
        linked = second if shared.source_event_ids[1] == second.event_id else first
        addition = new_addition(linked, at=RECEIVED + timedelta(days=1))
        await inputs.publish(addition)
        shared = await feed.reaches(shared_id, 3)
        assert shared.history[-1].change is CaseChange.REPORTER_ADDED
        assert shared.history[-1].source_event_id == addition.event_id

        await router.caught_up()
        assert set(feed.of_staff(staff)) == {shared_id, other_id}  # not one more
        assert await stored(router.db, shared_id) == shared
        assert await stored(router.db, derive_case_id(linked.event_id)) is None
        metrics = await router.metrics()
        assert counted(metrics, "qinglian_cases_opened_total") >= 2


# --- Two routers on the real store, without Kafka ---------------------------------------------
# FerretDB 1.24 runs a conditional update as a read and then a whole-document write by _id: two
# writers that both matched the same revision both "succeed". The router relies on the store
# adapter's revision guard and first-writer-wins inserts instead (services/common/documents.py).


def two_routers(store: AsyncDatabase[Document]) -> tuple[Cases, Cases]:
    return Cases(case_store(store), ROUTING), Cases(case_store(store), ROUTING)


async def test_two_routers_opening_related_complaints_at_once_open_one_case_per_person(
    store: AsyncDatabase[Document],
) -> None:
    one, two = two_routers(store)
    staff = [fresh("R") for _ in range(15)]
    batches = [[Opening.of_complaint(new_complaint(s)) for s in staff] for _ in range(4)]
    now = RECEIVED + timedelta(seconds=1)

    await asyncio.gather(
        one.open_or_link(batches[0] + batches[2], now=now),
        two.open_or_link(batches[1] + batches[3], now=now),
    )

    cases = {case_id: v.value for case_id, v in (await case_store(store).cases.find()).items()}
    assert len(cases) == len(staff)
    for case in cases.values():
        assert case is not None
        assert len(case.source_event_ids) == 4
        assert changes(case).count(CaseChange.LINKED) == 3
        assert case.revision == len(case.history) - 1


async def test_two_routers_changing_one_case_at_once_lose_no_change(
    store: AsyncDatabase[Document],
) -> None:
    one, two = two_routers(store)
    complaint = new_complaint(fresh("R"))
    case_id = derive_case_id(complaint.event_id)
    await one.open_or_link([Opening.of_complaint(complaint)], now=RECEIVED)
    replies = [new_reply(case_id, at=RECEIVED + timedelta(hours=n)) for n in range(1, 25)]

    await asyncio.gather(
        *(
            (one if n % 2 else two).record(replies[n : n + 3], now=RECEIVED)
            for n in range(0, len(replies), 3)
        )
    )

    case = await stored(store, case_id)
    assert case is not None
    assert case.revision == 1 + len(replies)
    replied = [e.source_event_id for e in case.history if e.change is CaseChange.REPORTER_REPLIED]
    assert sorted(replied) == sorted(reply.event_id for reply in replies)


async def test_an_update_waiting_while_its_case_opens_is_neither_lost_nor_applied_twice(
    store: AsyncDatabase[Document],
) -> None:
    opener, recorder = two_routers(store)
    for _ in range(10):
        complaint = new_complaint(fresh("R"))
        case_id = derive_case_id(complaint.event_id)
        finding = new_finding(case_id, at=RECEIVED + timedelta(days=1))

        await asyncio.gather(
            opener.open_or_link([Opening.of_complaint(complaint)], now=RECEIVED),
            recorder.record([finding], now=RECEIVED),
        )

        case = await stored(store, case_id)
        assert case is not None
        assert changes(case).count(CaseChange.FINDING_RECORDED) == 1
        assert await waiting(store, case_id) == set()


# --- Two routers ------------------------------------------------------------------------------

GROUPS, PER_GROUP, SINGLES, WITH_FINDING, REPLIES = 40, 5, 100, 60, 3
"""Groups of related complaints (each with one addition per complaint), single complaints (the
first with a finding, the others with a burst of replies)."""


def free_ports(count: int) -> list[int]:
    """Ports of 8400-8499 nothing listens on."""
    ports = []
    for port in range(8400, 8500):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise AssertionError("no free port in 8400-8499")


@dataclass
class RouterProcess:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.output()[-4000:]}")
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
                return (await client.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    async def metrics(self) -> str:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as client:
            return (await client.get("/metrics")).text

    async def stop(self) -> str | None:
        """SIGTERM, then wait; what went wrong, if anything."""
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, 40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return f"{self.name} did not stop within 40 s of SIGTERM"
        # uvicorn re-raises SIGTERM once its shutdown is complete.
        if self.process.returncode not in (0, -signal.SIGTERM) or (
            "Application shutdown complete" not in self.output()
        ):
            return f"{self.name} did not shut down gracefully ({self.process.returncode})"
        return None


def start_router(name: str, env: dict[str, str], port: int, logs: Path) -> RouterProcess:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.router"],
            cwd=ROOT,
            env={**env, "QINGLIAN_HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return RouterProcess(name, process, f"http://127.0.0.1:{port}", log)


@dataclass
class SharedRun:
    """What two router processes did with one stream of complaints and findings."""

    db: AsyncDatabase[Document]
    group: str
    start: Positions
    """Where the routers started reading."""
    staff_prefix: str
    groups: list[list[ComplaintReceived]]
    singles: list[ComplaintReceived]
    findings: dict[str, InvestigationFindingReceived]
    """By the case id of the single complaint they conclude."""
    additions: dict[uuid.UUID, ReporterAddition]
    """By the event id of the grouped complaint they add to."""
    replies: dict[str, list[ReporterReply]]
    """By the case id of the single complaint they answer, in the order sent."""
    metrics: dict[str, str]
    stop_problems: list[str]
    logs: Path

    @property
    def complaints(self) -> list[ComplaintReceived]:
        return [*(c for group in self.groups for c in group), *self.singles]

    async def cases(self) -> dict[str, CaseUpdated]:
        """This run's cases in the store."""
        stored = await case_store(self.db).cases.find()
        return {
            case_id: case.value
            for case_id, case in stored.items()
            if case.value is not None
            and (case.value.accused_staff_id or "").startswith(self.staff_prefix)
        }


@pytest.fixture(scope="module")
async def shared_run(
    infra: InfraSettings,
    inputs: Inputs,
    mongo: AsyncMongoClient[Document],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[SharedRun]:
    """Two router processes in one group on one database, fed complaints of which many share
    a staff member and category (so that both instances link to the same cases at once),
    findings parked before their complaints, and findings after them; reporters' additions to
    every grouped complaint (keyed by complaint, so both instances change one case at once),
    and bursts of replies on one case (so that a batch holds several changes of one case)."""
    run = uuid.uuid4().hex[:10]
    db_name, prefix, staff_prefix = f"router_pair_{run}", f"router-pair-{run}-", f"P{run}-"
    logs = tmp_path_factory.mktemp("router-logs")
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": db_name,
        "QINGLIAN_KAFKA_GROUP_PREFIX": prefix,
        "QINGLIAN_RETRY_BACKOFF_MAX_SECONDS": "1",
    }
    group = f"{prefix}router"
    db = mongo[db_name]
    start = await input_ends(infra.kafka_bootstrap)
    await start_at(infra.kafka_bootstrap, group, start)
    try:
        routers = [
            start_router(name, env, port, logs)
            for name, port in zip(("router-a", "router-b"), free_ports(2), strict=True)
        ]
        stop_problems: list[str] = []
        try:
            for router in routers:
                await eventually(router.healthy, within=60, what=f"{router.name} healthy")

            async def both_in_group() -> bool:
                found = await consumers(infra.kafka_bootstrap, group)
                return set(found.values()) == {("Stable", len(routers))}

            await eventually(both_in_group, within=60, what="both routers' consumers in groups")

            groups = [
                [new_complaint(f"{staff_prefix}G{n}", "kickback") for _ in range(PER_GROUP)]
                for n in range(GROUPS)
            ]
            singles = [new_complaint(f"{staff_prefix}S{n}", "attitude") for n in range(SINGLES)]
            findings = {
                derive_case_id(c.event_id): new_finding(
                    derive_case_id(c.event_id), at=RECEIVED + timedelta(days=1)
                )
                for c in singles[:WITH_FINDING]
            }
            complaints = [*(c for group_ in groups for c in group_), *singles]
            random.Random(run).shuffle(complaints)
            early = list(findings.values())[: WITH_FINDING // 2]
            late = list(findings.values())[WITH_FINDING // 2 :]
            additions = {
                c.event_id: new_addition(c, at=RECEIVED + timedelta(hours=n % 7 + 1))
                for n, c in enumerate(c for group_ in groups for c in group_)
            }
            replies = {
                derive_case_id(c.event_id): [
                    new_reply(derive_case_id(c.event_id), at=RECEIVED + timedelta(hours=n + 1))
                    for n in range(REPLIES)
                ]
                for c in singles[WITH_FINDING:]
            }
            await inputs.publish(*early)
            await inputs.publish(*complaints)
            await inputs.publish(*late, *additions.values())
            await inputs.publish(*(reply for burst in replies.values() for reply in burst))

            # Committed only once handled: at lag 0 every record has been handled.
            try:
                await eventually(
                    lambda: caught_up(infra.kafka_bootstrap, group),
                    within=150,
                    what="both routers to handle everything",
                )
            except AssertionError as error:
                tails = "".join(f"\n--- {r.name}:\n{r.output()[-3000:]}" for r in routers)
                raise AssertionError(f"{error}{tails}") from None
            metrics = {router.name: await router.metrics() for router in routers}
        finally:
            for router in routers:
                if router.process.poll() is None:
                    problem = await router.stop()
                else:
                    problem = f"{router.name} had exited ({router.process.returncode})"
                if problem:
                    stop_problems.append(problem)
        yield SharedRun(
            db=db,
            group=group,
            start=start,
            staff_prefix=staff_prefix,
            groups=groups,
            singles=singles,
            findings=findings,
            additions=additions,
            replies=replies,
            metrics=metrics,
            stop_problems=stop_problems,
            logs=logs,
        )
    finally:
        await mongo.drop_database(db_name)


async def test_two_routers_share_the_work_and_open_each_case_once(
    shared_run: SharedRun, feed: CaseFeed
) -> None:
    run = shared_run
    cases = await run.cases()

    assert len(cases) == GROUPS + SINGLES, f"logs in {run.logs}"
    placed = Counter(event_id for case in cases.values() for event_id in case.source_event_ids)
    assert placed == Counter(c.event_id for c in run.complaints)  # each in exactly one case
    for group in run.groups:
        case_ids = {await case_of_event(run.db, c.event_id) for c in group}
        assert len(case_ids) == 1
        case = cases[str(case_ids.pop())]
        assert sorted(case.source_event_ids) == sorted(c.event_id for c in group)
        assert changes(case).count(CaseChange.LINKED) == PER_GROUP - 1
        # Every reporter's addition is in the case their complaint went to, once: none lost
        # while both instances changed the case, none applied twice.
        added = [e.source_event_id for e in case.history if e.change is CaseChange.REPORTER_ADDED]
        assert sorted(added) == sorted(run.additions[c.event_id].event_id for c in group)
        assert case.revision == 2 * PER_GROUP
        for c in group:  # nothing is left waiting under the linked complaints' own case ids
            assert await waiting(run.db, derive_case_id(c.event_id)) == set()
    for complaint in run.singles:
        case_id = derive_case_id(complaint.event_id)
        case = cases[case_id]
        assert await case_of_event(run.db, complaint.event_id) == case_id
        if case_id in run.findings:
            assert case.state is CaseState.FINDING_RECORDED
            assert changes(case).count(CaseChange.FINDING_RECORDED) == 1
            assert case.history[-1].source_event_id == run.findings[case_id].event_id
        else:
            assert case.state is CaseState.ASSIGNED
            # A burst of replies on one case: each once, in the order they were sent.
            replied = [e for e in case.history if e.change is CaseChange.REPORTER_REPLIED]
            assert [e.source_event_id for e in replied] == [
                reply.event_id for reply in run.replies[case_id]
            ]
    for case in cases.values():
        applied = [(entry.change, entry.source_event_id) for entry in case.history]
        assert len(applied) == len(set(applied))  # no event applied twice
        assert case.revision == len(case.history) - 1
        assert await waiting(run.db, case.case_id) == set()

    # What consumers keep (the highest revision of each case) is what the routers stored.
    await eventually(
        lambda: all(feed.at_least(case_id, case.revision) for case_id, case in cases.items()),
        what="the last revision of every case published",
    )
    assert {case_id: feed.latest[case_id] for case_id in cases} == cases
    published = {
        case_id
        for case_id, case in feed.latest.items()
        if (case.accused_staff_id or "").startswith(run.staff_prefix)
    }
    assert published == set(cases)  # no case was opened a second time under another id

    for name, metrics in run.metrics.items():
        assert counted(metrics, "qinglian_case_changes_total") > 0, f"{name} did nothing"
    assert run.stop_problems == [], f"logs in {run.logs}"


async def test_a_replay_from_the_start_changes_no_stored_case(
    shared_run: SharedRun, infra: InfraSettings, mongo: AsyncMongoClient[Document]
) -> None:
    before = await snapshot(shared_run.db)
    mine = await shared_run.cases()
    assert len(mine) == GROUPS + SINGLES

    settings = router_settings(
        infra, db=shared_run.db.name, group_prefix=f"router-replay-{uuid.uuid4().hex[:10]}-"
    )
    # A new consumer group, reading again all that the two routers read.
    await start_at(infra.kafka_bootstrap, settings.consumer_group("router"), shared_run.start)
    async with running_router(settings, mongo) as replay:
        await replay.caught_up(within=90)
        metrics = await replay.metrics()
    after = await snapshot(shared_run.db)

    for collection, documents in before.items():
        changed = [key for key, doc in documents.items() if after[collection].get(key) != doc]
        assert changed == [], f"{collection} changed by the replay"
        assert set(after[collection]) == set(documents), f"{collection} grew by the replay"
    assert await shared_run.cases() == mine
    # Nothing was recorded as new (no other test published meanwhile: the module runs alone).
    assert counted(metrics, "qinglian_case_changes_total") == 0


# --- Start-up ---------------------------------------------------------------------------------


async def test_a_routing_table_naming_an_unknown_department_is_refused_at_start(
    infra: InfraSettings, mongo: AsyncMongoClient[Document], tmp_path: Path, unique: str
) -> None:
    shipped = RouterSettings().routing_table.read_text(encoding="utf-8")
    wrong = 'responsible = "finance"'
    line = shipped.splitlines().index(wrong) + 1
    table = tmp_path / "routing_table_draft.toml"
    table.write_text(shipped.replace(wrong, 'responsible = "finanse"', 1), encoding="utf-8")
    group_prefix, db_name = f"router-bad-{unique}-", f"router_bad_{unique}"
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": db_name,
        "QINGLIAN_KAFKA_GROUP_PREFIX": group_prefix,
        "QINGLIAN_HTTP_PORT": str(free_ports(1)[0]),
        "QINGLIAN_ROUTING_TABLE": str(table),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.router",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise

    text = output.decode(errors="replace")
    assert process.returncode != 0
    assert (
        f"routing_table_draft.toml:{line} complaint[1].responsible: unknown department 'finanse'"
        in text
    ), text
    # Refused before consuming anything: no consumer group, no database.
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        groups = [group[0] for group in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    assert [group for group in groups if group.startswith(group_prefix)] == []
    assert db_name not in await mongo.list_database_names()
