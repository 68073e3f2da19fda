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
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pymongo import AsyncMongoClient

from schemas import topics
from schemas.base import Event
from schemas.catalogue import BY_TYPE
from services.common.addressees import ADDRESSEES_FILE
from services.common.consuming import subscriber_group
from services.common.kafka_access import SERVICES
from services.common.store import Document
from services.escalation.main import create_app as escalation_app
from services.escalation.settings import EscalationSettings
from tests.conftest import InfraSettings
from tests.integration.in_process import start_from_now
from tests.integration.kafka_reading import end_offsets
from tests.services import launch, wait_healthy
from tests.waiting import eventually

pytestmark = pytest.mark.infra

JUDICIAL = "yisong@hospital.example"
SUPERIOR = "shangbao@hospital.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """What the SMTP server took: (Message-ID, recipient, subject) per recipient; the first
    message's answer is held back ``stall_first`` seconds (the notifier is killed meanwhile)."""

    stall_first: float = 0.0
    received: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        with self.lock:
            first = not self.received
            for recipient in envelope.rcpt_tos:
                self.received.append(
                    (str(message["Message-ID"]), recipient, str(message["Subject"]))
                )
        if first and self.stall_first:
            await asyncio.sleep(self.stall_first)
        return "250 Message accepted for delivery"

    def to(self, recipient: str) -> list[tuple[str, str]]:
        with self.lock:
            return [(mid, subject) for mid, rcpt, subject in self.received if rcpt == recipient]


@dataclass
class RobotReceiver:
    """A group-chat robot's webhook on loopback: each post's body, msgid header and arrival."""

    posts: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        posts = self.posts

        class Webhook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append(
                    (time.time(), self.headers.get("X-Qinglian-Msgid", ""), json.loads(body))
                )
                answer = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        return Webhook


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def robot() -> Iterator[tuple[RobotReceiver, str]]:
    receiver = RobotReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver, f"http://127.0.0.1:{server.server_address[1]}/robot/send?key=security"
    finally:
        server.shutdown()
        server.server_close()


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


async def escalation_running(run: Run) -> Any:
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
        )
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
