"""The notifier against the real broker, store and an SMTP server on loopback (aiosmtpd's),
with escalation deciding in this process and the notifier as its own process: a kickback
finding at 50,000 yuan reaches the judicial and superior-authority liaisons exactly once each,
even with the notifier killed (SIGKILL) while it sends and started again; a rep found in a ward
is a removal alert on the security desk's group-chat robot within seconds.

"Exactly once" is what the receiving side sees: every message to a liaison carries the same
Message-ID (a repeat after the kill is recognisable as one), and no second notification (a
different id) is ever made for the same decision.
"""

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError
from pydantic import BaseModel
from pymongo import AsyncMongoClient

from bench.harness.receivers import Mailbox, RobotReceiver, robot_server, smtp_server
from schemas import topics
from schemas.acknowledgement import NotificationAcknowledged
from schemas.base import Event
from schemas.catalogue import BY_TYPE
from services.common.acknowledge_links import DEVELOPMENT_KEY, verify
from services.common.addressees import ADDRESSEES_FILE
from services.common.consuming import subscriber_group
from services.common.kafka_access import SERVICES
from services.common.roles import Role
from services.common.service import system_clock
from services.common.store import Document
from services.desk.main import create_app as desk_app
from services.desk.settings import DeskSettings
from services.escalation.main import create_app as escalation_app
from services.escalation.settings import EscalationSettings
from services.notifier.main import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from tests.conftest import InfraSettings
from tests.desk import PASSWORD, hidden, sign_in_anew
from tests.factories import complaint_event, judicial_decision, routed_case
from tests.integration.in_process import serving, start_from_now
from tests.integration.kafka_reading import end_offsets
from tests.services import launch, wait_healthy
from tests.waiting import eventually

pytestmark = pytest.mark.infra

JUDICIAL = "yisong@hospital.example"
SUPERIOR = "shangbao@hospital.example"
DISCIPLINE = "jijian@hospital.example"
LEADERSHIP = "leadership@hospital.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    with smtp_server(box, free_port()) as controller:
        box.port = controller.port  # type: ignore[attr-defined]
        yield box


@pytest.fixture
def robot() -> Iterator[tuple[RobotReceiver, str]]:
    receiver = RobotReceiver()
    with robot_server(receiver) as url:
        yield receiver, url


def addressees_with_robot(tmp_path: Path, robot_url: str) -> Path:
    text = ADDRESSEES_FILE.read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:9/security-desk", robot_url)
    path = tmp_path / "addressees.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Run:
    infra: InfraSettings
    name: str
    tmp: Path

    def settings(self, service: str) -> InfraSettings:
        return InfraSettings(
            kafka_bootstrap=self.infra.kafka_bootstrap,
            mongo_url=self.infra.mongo_url,
            mongo_db=f"{service}_{self.name}",
            kafka_group_prefix=f"{service}-{self.name}-",
        )


@pytest.fixture
async def run(infra: InfraSettings, tmp_path: Path) -> AsyncIterator[Run]:
    this = Run(infra, uuid.uuid4().hex[:10], tmp_path)
    yield this
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    for service in ("escalation", "notifier"):
        await client.drop_database(f"{service}_{this.name}")
    await client.close()


async def escalation_running(run: Run, clock: Callable[[], datetime] | None = None) -> Any:
    settings = run.settings("escalation")
    await start_from_now(settings, "escalation", *SERVICES["escalation"].reads)
    return escalation_app(
        EscalationSettings(
            http_port=0,
            kafka_bootstrap=settings.kafka_bootstrap,
            mongo_url=settings.mongo_url,
            mongo_db=settings.mongo_db,
            kafka_group_prefix=settings.kafka_group_prefix,
            retry_backoff_max_seconds=0.5,
            clock_check_seconds=0.5,
        ),
        clock=clock or system_clock,
    )


def notifier_env(run: Run, mailbox: Mailbox, addressees: Path) -> dict[str, str]:
    settings = run.settings("notifier")
    return {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": settings.mongo_url,
        "QINGLIAN_MONGO_DB": settings.mongo_db,
        "QINGLIAN_KAFKA_GROUP_PREFIX": settings.kafka_group_prefix,
        "QINGLIAN_SMTP_PORT": str(mailbox.port),  # type: ignore[attr-defined]
        "QINGLIAN_ADDRESSEES": str(addressees),
        "QINGLIAN_DESK_URL": "https://desk.hospital.example",
        "QINGLIAN_SEND_EVERY_SECONDS": "0.2",
        "QINGLIAN_FIRST_RETRY_SECONDS": "0.5",
        "QINGLIAN_SEND_CLAIM_SECONDS": "10",
    }


def start_notifier(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = launch("notifier", port, env, log, append=True)
    wait_healthy("notifier", f"http://127.0.0.1:{port}", process, log)
    return process


def accepted(event_type: str, **facts: Any) -> Event:
    kind = BY_TYPE[event_type]
    submission = kind.submission.model_validate(
        {"source_system": "notifier_test", "source_ref": uuid.uuid4().hex, **facts}
    )
    return kind.event.accept(submission, received_at=datetime.now(UTC))


async def publish(infra: InfraSettings, event: Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        kind = BY_TYPE[event.event_type]  # type: ignore[attr-defined]
        await producer.send_and_wait(
            kind.topic, event.model_dump_json().encode(), key=kind.key(event)
        )
    finally:
        await producer.stop()


async def test_a_kickback_of_50000_yuan_reaches_judicial_and_superior_once_across_a_kill(
    run: Run, mailbox: Mailbox, robot: tuple[RobotReceiver, str]
) -> None:
    mailbox.stall_first = 6.0
    env = notifier_env(run, mailbox, addressees_with_robot(run.tmp, robot[1]))
    await start_from_now(run.settings("notifier"), "notifier", *SERVICES["notifier"].reads)
    port, log = free_port(), run.tmp / "notifier.log"
    notifier = start_notifier(env, port, log)
    app = await escalation_running(run)
    before = await end_offsets(run.infra.kafka_bootstrap, topics.DECISIONS)
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    finding = accepted(
        "investigation_finding",
        occurred_at="2026-12-01T10:00:00+08:00",
        case_id=case_id,
        substantiated=True,
        confirmed_categories=["kickback"],
        staff_ids=[f"S{uuid.uuid4().hex[:6].upper()}"],
        confirmed_amount_cny="50000.00",
        summary="查实收受回扣五万元。",
    )
    try:
        async with app.router.lifespan_context(app):
            await publish(run.infra, finding)
            await eventually(lambda: bool(mailbox.received), within=60, what="a first message")
            notifier.send_signal(signal.SIGKILL)  # while the SMTP server holds its answer
            notifier.wait(timeout=10)
            await rewind(run, topics.DECISIONS, before)  # as if killed before it committed
            notifier = start_notifier(env, port, log)

            def both_told() -> bool:
                return bool(mailbox.to(JUDICIAL)) and bool(mailbox.to(SUPERIOR))

            await eventually(both_told, within=90, what="the judicial and superior liaisons")
            await asyncio.sleep(3)  # any further repeat would have come by now
    finally:
        notifier.send_signal(signal.SIGTERM)
        notifier.wait(timeout=40)
    for liaison, marker in ((JUDICIAL, "司法机关"), (SUPERIOR, "上级卫生行政部门")):
        assert all(marker in subject and case_id in subject for _, subject in mailbox.to(liaison))
    # Each addressee has one notification of this finding (its decisions are one each): one
    # Message-ID, however often it came.
    recipients = {rcpt for _, rcpt, _ in mailbox.received}
    assert {JUDICIAL, SUPERIOR} <= recipients
    for recipient in recipients:
        assert len({mid for mid, _ in mailbox.to(recipient)}) == 1, mailbox.to(recipient)


async def rewind(run: Run, topic: str, to: dict[int, int]) -> None:
    """Commit ``to`` for the notifier's subscriber of ``topic`` once the killed member has left
    the group (its session timed out)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            await _commit(run, topic, to)
            return
        except CommitFailedError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def _commit(run: Run, topic: str, to: dict[int, int]) -> None:
    settings = run.settings("notifier")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=subscriber_group(settings.consumer_group("notifier"), topic),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = {TopicPartition(topic, number): end for number, end in to.items()}
        consumer.assign(list(partitions))
        await consumer.commit(partitions)
    finally:
        await consumer.stop()


async def test_a_rep_in_a_ward_is_a_removal_alert_on_the_security_desks_robot(
    run: Run, mailbox: Mailbox, robot: tuple[RobotReceiver, str]
) -> None:
    receiver, url = robot
    env = notifier_env(run, mailbox, addressees_with_robot(run.tmp, url))
    await start_from_now(run.settings("notifier"), "notifier", *SERVICES["notifier"].reads)
    notifier = start_notifier(env, free_port(), run.tmp / "notifier.log")
    app = await escalation_running(run)
    company = f"YX-{uuid.uuid4().hex[:8].upper()}"
    now = datetime.now(UTC).isoformat()
    visit = accepted(
        "visitor_log",
        occurred_at=now,
        rep_id=f"REP-{uuid.uuid4().hex[:6]}",
        rep_name="王某",
        company_code=company,
        company_name="某医药公司",
        department="general_psychiatry",
        place_code="W3-12",
        place_kind="ward",
        started_at=now,
    )
    try:
        async with app.router.lifespan_context(app):
            await publish(run.infra, visit)
            await eventually(lambda: bool(receiver.posts), within=60, what="the removal alert")
    finally:
        notifier.send_signal(signal.SIGTERM)
        notifier.wait(timeout=40)
    [(_, msgid, body)] = receiver.posts[:1]
    assert body["msgtype"] == "text"
    text = body["text"]["content"]
    assert "驱离提醒" in text
    assert "立即到场劝离医药代表" in text
    assert company in text
    assert msgid
    assert msgid in text


# --- The notifier in this process, on a clock the test sets ----------------------------------


@dataclass
class SettableClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def notifier_settings(run: Run, port: int, **more: Any) -> NotifierSettings:
    settings = run.settings("notifier")
    return NotifierSettings(
        kafka_bootstrap=settings.kafka_bootstrap,
        mongo_url=settings.mongo_url,
        mongo_db=settings.mongo_db,
        kafka_group_prefix=settings.kafka_group_prefix,
        smtp_port=port,
        desk_url="https://desk.hospital.example",
        send_every_seconds=0.2,
        follow_up_every_seconds=0.2,
        first_retry_seconds=0.5,
        longest_retry_seconds=2.0,
        retry_backoff_max_seconds=0.5,
        **more,
    )


async def publish_record(infra: InfraSettings, topic: str, value: BaseModel, key: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value.model_dump_json().encode(), key=key.encode())
    finally:
        await producer.stop()


def acknowledge_link_in(body: str) -> uuid.UUID:
    """The notification an email's acknowledge link acknowledges, as the desk reads it."""
    token = body.split("/ack/", 1)[1].split()[0]
    return verify(token, DEVELOPMENT_KEY, now=datetime.now(UTC))


async def test_an_acknowledgement_stops_the_reminders_the_others_get_theirs(
    run: Run, mailbox: Mailbox
) -> None:
    clock = SettableClock(datetime.now(UTC))
    settings = notifier_settings(run, mailbox.port)  # type: ignore[attr-defined]
    await start_from_now(settings, "notifier", *SERVICES["notifier"].reads)
    app = notifier_app(settings, clock=clock)
    decision = judicial_decision(clock.now)
    async with app.router.lifespan_context(app):
        await publish_record(run.infra, topics.DECISIONS, decision, decision.subject_id)
        await eventually(
            lambda: bool(mailbox.to(JUDICIAL)) and bool(mailbox.to(DISCIPLINE)),
            within=60,
            what="the judicial transfer's two notifications",
        )
        [(_, _, body)] = [m for m in mailbox.messages if JUDICIAL in m[1]]
        ack = NotificationAcknowledged(
            event_id=uuid.uuid4(),
            notification_id=acknowledge_link_in(body),
            acknowledged_by="yisong",
            acknowledged_at=clock.now,
        )
        await publish_record(run.infra, topics.ACKNOWLEDGEMENTS, ack, str(ack.notification_id))
        await asyncio.sleep(3)  # the acknowledgement is taken in
        clock.now += timedelta(hours=25)  # past the 24 hours to acknowledge
        await eventually(
            lambda: any("【提醒】" in subject for _, subject in mailbox.to(DISCIPLINE)),
            within=60,
            what="the reminder to 纪检监察室",
        )
        await asyncio.sleep(2)
    assert [subject for _, subject in mailbox.to(JUDICIAL) if "【提醒】" in subject] == []


async def test_the_smtp_server_down_delays_but_loses_nothing(run: Run, mailbox: Mailbox) -> None:
    settings = notifier_settings(run, free_port())  # nothing listens there yet
    await start_from_now(settings, "notifier", *SERVICES["notifier"].reads)
    app = notifier_app(settings)
    decision = judicial_decision(datetime.now(UTC))
    async with app.router.lifespan_context(app):
        await publish_record(run.infra, topics.DECISIONS, decision, decision.subject_id)
        await asyncio.sleep(5)  # attempts refused meanwhile
        with smtp_server(mailbox, settings.smtp_port):
            await eventually(
                lambda: bool(mailbox.to(JUDICIAL)) and bool(mailbox.to(DISCIPLINE)),
                within=60,
                what="the notifications once the server is back",
            )
    assert len({mid for mid, _ in mailbox.to(JUDICIAL)}) == 1


async def test_an_overdue_complaint_notifies_the_head_then_leadership(
    run: Run, mailbox: Mailbox
) -> None:
    opened = datetime.now(UTC) - timedelta(days=1)
    clock = SettableClock(datetime.now(UTC))
    complaint = complaint_event(
        source_ref=uuid.uuid4().hex,
        accused_staff_id=f"S{uuid.uuid4().hex[:6].upper()}",
        accused_department="pharmacy",
        received_at=opened,
    )
    case = routed_case(complaint)
    head = f"head.{case.responsible_department.code}@hospital.example"
    settings = notifier_settings(run, mailbox.port)  # type: ignore[attr-defined]
    await start_from_now(settings, "notifier", *SERVICES["notifier"].reads)
    notifier = notifier_app(settings, clock=clock)
    escalation = await escalation_running(run, clock=clock)
    async with (
        escalation.router.lifespan_context(escalation),
        notifier.router.lifespan_context(notifier),
    ):
        await publish_record(run.infra, topics.CASES, case, case.case_id)

        def about_the_case(recipient: str) -> list[str]:
            """The decisions about the case sent to ``recipient``; not the reminders (提醒) nor
            the superior's (督办), which the seven days since also call for."""
            return [
                subject
                for _, subject in mailbox.to(recipient)
                if case.case_id in subject
                and "【提醒】" not in subject
                and "【督办】" not in subject
            ]

        await asyncio.sleep(3)  # filed; not overdue yet
        assert about_the_case(head) == []
        clock.now = case.deadline + timedelta(hours=1)
        await eventually(lambda: bool(about_the_case(head)), within=60, what="the head")
        assert about_the_case(LEADERSHIP) == []
        clock.now = case.deadline + timedelta(days=7, hours=1)
        await eventually(lambda: bool(about_the_case(LEADERSHIP)), within=60, what="leadership")
    [to_head] = about_the_case(head)
    assert "R-EVERY-COMPLAINT" in to_head
    [body] = [
        b
        for _, to, b in mailbox.messages
        if head in to and f"案件：{case.case_id}" in b and "提醒：" not in b
    ]
    assert f"https://desk.hospital.example/cases/{case.case_id}" in body
    assert complaint.description not in body


# --- The desk shows what was sent, and takes the acknowledgement ----------------------------


def desk_settings(run: Run) -> DeskSettings:
    settings = run.settings("desk")
    (run.tmp / "intake_key").write_text("qlk_desk_key\n")
    (run.tmp / "reader_key").write_text("reader-key")
    return DeskSettings(
        kafka_bootstrap=settings.kafka_bootstrap,
        mongo_url=settings.mongo_url,
        mongo_db=settings.mongo_db,
        kafka_group_prefix=settings.kafka_group_prefix,
        intake_api_key_file=run.tmp / "intake_key",
        session_reader_key_file=run.tmp / "reader_key",
        retry_backoff_max_seconds=0.5,
    )


async def test_the_desk_shows_each_notification_and_who_acknowledged_it(
    run: Run, mailbox: Mailbox
) -> None:
    notifier_config = notifier_settings(run, mailbox.port)  # type: ignore[attr-defined]
    desk_config = desk_settings(run)
    await start_from_now(notifier_config, "notifier", *SERVICES["notifier"].reads)
    await start_from_now(desk_config, "desk", *SERVICES["desk"].reads)
    notifier, desk = notifier_app(notifier_config), desk_app(desk_config)
    decision = judicial_decision(datetime.now(UTC))
    try:
        async with (
            notifier.router.lifespan_context(notifier),
            serving(desk, "http://desk.test") as http,
        ):
            accounts = desk.state.desk.accounts
            one_time = await accounts.create(
                "jijian",
                role=Role.DISCIPLINE_INSPECTION,
                display_name="纪检员",
                department=None,
                staff_id="S0302",
                now=datetime.now(UTC),
            )
            assert (await sign_in_anew(http, "jijian", one_time, PASSWORD)).status_code == 200
            await publish_record(run.infra, topics.DECISIONS, decision, decision.subject_id)

            async def register(state: str) -> str:
                answer = await http.get("/notifications", params={"state": state})
                return answer.text

            async def listed(state: str, *texts: str) -> bool:
                page = await register(state)
                return all(text in page for text in texts)

            await eventually(
                lambda: listed(
                    "unacknowledged", "纪检监察室", "司法机关移送联络人", str(decision.case_id)
                ),
                within=60,
                what="both notifications on the desk, sent and not acknowledged",
            )
            [(_, _, body)] = [m for m in mailbox.messages if DISCIPLINE in m[1]]
            path = "/ack/" + body.split("/ack/", 1)[1].split()[0]
            opened = await http.get(path)
            assert opened.status_code == 200, opened.text
            done = await http.post(path, data={"csrf_token": hidden(opened.text)})
            assert "已确认收到" in done.text
            await eventually(
                lambda: listed("acknowledged", "纪检监察室", "纪检员（S0302）"),
                within=60,
                what="the acknowledgement on the register",
            )
            assert "司法机关移送联络人" not in await register("acknowledged")
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=notifier), base_url="http://notifier.test"
            ) as notifier_http:

                async def counted() -> bool:
                    metrics = (await notifier_http.get("/metrics")).text
                    return (
                        "qinglian_notifications_acknowledged_total"
                        '{send_key="escalation_judicial_organs"} 1.0' in metrics
                    )

                await eventually(counted, within=30, what="the acknowledgement counted")
    finally:
        client: AsyncMongoClient[Document] = AsyncMongoClient(run.infra.mongo_url)
        await client.drop_database(desk_config.mongo_db)
        await client.close()
