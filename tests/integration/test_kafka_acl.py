"""Kafka as production runs it: each service and each raw sender logs in as its own user, and
KRaft's StandardAuthorizer lets each do only its part (services/common/kafka_access.py).

A Kafka of its own is started by ``deploy/local/runtime.sh start kafka-secure`` (SASL_PLAINTEXT,
SCRAM-SHA-512, the ACLs production gets from ``services.common.kafka_setup``) on free ports in a
temporary folder, then real clients try what an attacker holding one password would.
"""

import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pydantic import ValidationError

from schemas import topics
from schemas.base import derive_event_id
from schemas.dead_letter import DeadLetter
from services.common.raw_senders import RAW_SENDERS_FILE, RawSenders
from services.escalation.main import create_app as escalation_app
from services.escalation.settings import EscalationSettings
from services.portal.main import create_app as portal_app
from services.portal.settings import PortalSettings
from services.reporting.main import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.router.main import create_app as router_app
from services.router.settings import RouterSettings
from tests.conftest import InfraSettings
from tests.integration.intake_app import intake_settings, running_intake
from tests.waiting import eventually

pytestmark = pytest.mark.infra

RUNTIME = Path(__file__).resolve().parents[2] / "deploy" / "local" / "runtime.sh"
SENDERS = RawSenders.from_file(RAW_SENDERS_FILE)
OCCURRED_AT = "2026-11-20T09:30:00+08:00"
_SETTINGS: dict[str, Any] = {
    "router": RouterSettings,
    "escalation": EscalationSettings,
    "reporting": ReportingSettings,
    "portal": functools.partial(PortalSettings, portal_key="k" * 32),
}
_CREATE_APP: dict[str, Any] = {
    "router": router_app,
    "escalation": escalation_app,
    "reporting": reporting_app,
    "portal": portal_app,
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class SecureKafka:
    bootstrap: str
    secrets: Path

    def password_file(self, user: str) -> Path:
        return self.secrets / f"kafka_{user}_password"

    def login(self, user: str) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": user,
            "sasl_plain_password": self.password_file(user).read_text(encoding="utf-8").strip(),
        }


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    local = tmp_path_factory.mktemp("kafka-secure")
    port = _free_port()
    env = {
        **os.environ,
        "QINGLIAN_LOCAL_DIR": str(local),
        "QINGLIAN_KAFKA_SECURE_PORT": str(port),
        "QINGLIAN_KAFKA_SECURE_CONTROLLER_PORT": str(_free_port()),
    }

    def runtime(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own script)
            [str(RUNTIME), *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    started = runtime("start", "kafka-secure")
    try:
        log = local / "logs" / "kafka-secure.log"
        assert started.returncode == 0, started.stderr + (log.read_text() if log.exists() else "")
        yield SecureKafka(f"127.0.0.1:{port}", local / "kafka-secure" / "secrets")
    finally:
        runtime("stop", "kafka-secure")


async def _send(kafka: SecureKafka, user: str, topic: str, value: bytes) -> tuple[int, int]:
    """Produce one record as ``user``, as the services do (acks=all, idempotent)."""
    producer = AIOKafkaProducer(**kafka.login(user), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    return int(sent.partition), int(sent.offset)


async def test_routers_user_cannot_write_the_decisions_escalation_publishes(
    secure_kafka: SecureKafka,
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(secure_kafka, "router", topics.DECISIONS, b'{"forged": "decision"}')
    # Its login works: it writes where its poison messages go.
    await _send(secure_kafka, "router", topics.DEAD_LETTERS, b'{"probe": "router"}')


async def test_a_raw_sender_cannot_write_another_senders_topic(secure_kafka: SecureKafka) -> None:
    other = topics.raw_topic("rep-desk")

    with pytest.raises(TopicAuthorizationFailedError):
        await _send(secure_kafka, "his", other, b'{"event_type": "visitor_log"}')
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(secure_kafka, "his", topics.SATISFACTION_RATINGS, b"{}")
    await _send(secure_kafka, "his", topics.raw_topic("his"), b"not even json")


async def _read(kafka: SecureKafka, topic: str, done: Callable[[list[bytes]], bool]) -> None:
    """Read ``topic`` from its start as admin until ``done`` says the values read suffice.
    This Kafka is this module's own: what is on its topics, its tests put there."""
    admin = AIOKafkaAdminClient(**kafka.login("admin"))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    consumer = AIOKafkaConsumer(**kafka.login("admin"), enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(60):
            while not done(values):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    values += [record.value or b"" for record in records]
    finally:
        await consumer.stop()


async def _dead_letters_of(
    kafka: SecureKafka, positions: set[tuple[str, int, int]]
) -> dict[tuple[str, int, int], DeadLetter]:
    """The dead letter of each raw record at (topic, partition, offset)."""
    found: dict[tuple[str, int, int], DeadLetter] = {}

    def all_found(values: list[bytes]) -> bool:
        for value in values:
            try:
                letter = DeadLetter.model_validate_json(value)
            except ValidationError:  # the router test's probe
                continue
            found[(letter.source_topic, letter.source_partition, letter.source_offset)] = letter
        return positions <= set(found)

    await _read(kafka, topics.DEAD_LETTERS, all_found)
    return found


def _satisfaction(source_system: str, source_ref: str) -> bytes:
    record = {
        "event_type": "satisfaction",
        "source_system": source_system,
        "source_ref": source_ref,
        "occurred_at": OCCURRED_AT,
        "touchpoint": "settlement",
        "department": "OPD-PSY",
        "score": 4,
    }
    return json.dumps(record, ensure_ascii=False).encode()


def _visitor_log(source_system: str, source_ref: str) -> bytes:
    record = {
        "event_type": "visitor_log",
        "source_system": source_system,
        "source_ref": source_ref,
        "occurred_at": OCCURRED_AT,
        "rep_id": "REP-0417",
        "rep_name": "李明",
        "company_code": "YX-PHARMA-017",
        "company_name": "云南某医药有限公司",
        "host_staff_id": "S30417",
        "department": "PHARMACY",
        "place_code": "ADMIN-3F-RECEPTION",
        "place_kind": "reception_room",
        "started_at": "2026-11-20T09:00:00+08:00",
        "ended_at": "2026-11-20T09:25:00+08:00",
        "appointment_id": "APT-88121",
    }
    return json.dumps(record, ensure_ascii=False).encode()


@pytest.fixture
async def intake_as_its_user(
    secure_kafka: SecureKafka, infra: InfraSettings, unique: str
) -> AsyncIterator[None]:
    settings = intake_settings(
        infra,
        unique,
        kafka_bootstrap=secure_kafka.bootstrap,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="intake",
        kafka_sasl_password_file=secure_kafka.password_file("intake"),
        # The ACLs allow intake's consumer groups under the production prefix only, and its
        # reading of the production senders' topics.
        kafka_group_prefix="qinglian-",
        raw_senders=RAW_SENDERS_FILE,
    )
    async with running_intake(settings):
        yield


async def test_intake_refuses_a_record_that_names_another_source_system_or_event_type(
    secure_kafka: SecureKafka, intake_as_its_user: None
) -> None:
    his = topics.raw_topic("his")
    assert SENDERS.senders["his"].source_system == "his"
    assert "visitor_log" not in SENDERS.senders["his"].event_types
    ref = uuid.uuid4().hex
    as_another = await _send(secure_kafka, "his", his, _satisfaction("rep-desk", f"as-{ref}"))
    of_another_type = await _send(secure_kafka, "his", his, _visitor_log("his", f"type-{ref}"))
    await _send(secure_kafka, "his", his, _satisfaction("his", f"good-{ref}"))

    letters = await _dead_letters_of(secure_kafka, {(his, *as_another), (his, *of_another_type)})

    refused = letters[(his, *as_another)]
    assert refused.reason == "forbidden"
    assert [problem.field for problem in refused.problems] == ["source_system"]
    assert refused.source_system == "rep-desk"
    refused_type = letters[(his, *of_another_type)]
    assert refused_type.reason == "forbidden"
    assert [problem.field for problem in refused_type.problems] == ["event_type"]
    # The good record behind them was accepted as the sender's own.
    wanted = str(derive_event_id("his", f"good-{ref}"))
    await _read(
        secure_kafka,
        topics.SATISFACTION_RATINGS,
        lambda values: any(json.loads(value).get("event_id") == wanted for value in values),
    )


def _kafka_setup(kafka: SecureKafka) -> subprocess.CompletedProcess[str]:
    """python -m services.common.kafka_setup as admin, as kafka-setup runs in production."""
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "QINGLIAN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "QINGLIAN_KAFKA_SASL_USERNAME": "admin",
        "QINGLIAN_KAFKA_SASL_PASSWORD_FILE": str(kafka.password_file("admin")),
        "QINGLIAN_KAFKA_PASSWORDS_DIR": str(kafka.secrets),
    }
    return subprocess.run(
        [sys.executable, "-m", "services.common.kafka_setup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_kafka_setup_takes_away_what_its_plan_does_not_grant(
    secure_kafka: SecureKafka,
) -> None:
    # What an earlier installation or a hand-made change may have left: the former shared
    # user, and a sender allowed to write escalation's decisions.
    admin = AdminClient(
        {
            "bootstrap.servers": secure_kafka.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "admin",
            "sasl.password": secure_kafka.password_file("admin").read_text().strip(),
        }
    )
    leftover = "a-leftover-password-0123456789"
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    for future in admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("qinglian", info, leftover.encode())]
    ).values():
        future.result()
    granted = AclBinding(
        ResourceType.TOPIC,
        topics.DECISIONS,
        ResourcePatternType.LITERAL,
        "User:his",
        "*",
        AclOperation.WRITE,
        AclPermissionType.ALLOW,
    )
    for future in admin.create_acls([granted]).values():
        future.result()
    await _eventually_writes(secure_kafka, "his", topics.DECISIONS)

    done = _kafka_setup(secure_kafka)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])  # after the log lines
    assert summary["users_removed"] == ["qinglian"]
    assert summary["acls_deleted"] == 1
    with pytest.raises(TopicAuthorizationFailedError):
        await _send(secure_kafka, "his", topics.DECISIONS, b'{"forged": "decision"}')
    former = {**secure_kafka.login("admin"), "sasl_plain_username": "qinglian"}
    former["sasl_plain_password"] = leftover
    producer = AIOKafkaProducer(**former)
    with pytest.raises(KafkaError):  # its login is refused
        await producer.start()
    await producer.stop()


async def _eventually_writes(kafka: SecureKafka, user: str, topic: str) -> None:
    """Wait until the broker applies an ACL just created (it travels through KRaft's log)."""
    async with asyncio.timeout(30):
        while True:
            try:
                await _send(kafka, user, topic, b'{"probe": "acl"}')
                return
            except TopicAuthorizationFailedError:
                await asyncio.sleep(0.5)


@pytest.mark.parametrize("service", ["router", "escalation", "reporting", "portal"])
async def test_each_service_runs_as_its_own_user_reading_every_topic_it_subscribes_to(
    secure_kafka: SecureKafka, infra: InfraSettings, unique: str, service: str
) -> None:
    settings = _SETTINGS[service](
        kafka_bootstrap=secure_kafka.bootstrap,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=service,
        kafka_sasl_password_file=secure_kafka.password_file(service),
        kafka_group_prefix="qinglian-",
        mongo_url=infra.mongo_url,
        mongo_db=f"test_{unique}",
    )
    app = _CREATE_APP[service](settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client,
    ):
        assert (await client.get("/healthz")).status_code == 200
        subscribers = app.state.broker.subscribers

        async def every_subscriber_assigned() -> bool:
            return all(s.consumer is not None and s.consumer.assignment() for s in subscribers)

        # Joining each consumer group and fetching needs READ on the group and the topic.
        await eventually(every_subscriber_assigned, within=90, what=f"{service}'s consumers")
