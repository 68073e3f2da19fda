"""The raw Kafka topics: hospital systems publish JSON records directly, each to its own topic.

Intake accepts each good record as the same event HTTP would have made, and sends each bad
one to the dead-letter topic with the reason and the original bytes (sealed: they may hold a
complainant's phone number). It never stalls on input. A sender sends only as its own source
system (tests/integration/raw_senders.toml: one sender, "webform", of every event type, as
source system "portal").

The raw, fact and dead-letter topics are shared by every test and every run, so every test
looks only for its own records (unique source_ref values, and the partition/offset Kafka gave
each record it produced). Each intake here has a consumer group of its own that starts at the
raw topic's end (``start_from_now``): what earlier runs left there is not its business.
"""

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from schemas import topics
from schemas.base import derive_event_id
from schemas.catalogue import BY_TYPE, CATALOGUE, EventKind
from schemas.dead_letter import DeadLetter
from services.common.consuming import subscriber_group
from services.common.store import Document
from services.intake.crypto import SealError, Vault
from tests.conftest import InfraSettings
from tests.integration.in_process import start_from_now
from tests.integration.intake_app import (
    TEST_RAW_TOPIC,
    TEST_SOURCE,
    RunningIntake,
    intake_settings,
    running_intake,
)
from tests.integration.kafka_reading import (
    Positions,
    Record,
    end_offsets,
    published_since,
    wait_for,
)
from tests.waiting import eventually

RAW = TEST_RAW_TOPIC
RETRY_PAUSE = 0.05
"""Seconds between retries of a failed raw record: short, so a retried record costs little."""
OCCURRED_AT = "2026-11-20T09:30:00+08:00"

# One valid record of every event type, as the test sender would publish it (the
# source_ref is set per test). Dates lie in the past: intake refuses the future.
FACTS: dict[str, dict[str, Any]] = {
    "complaint": {
        "channel": "portal",
        "category": "kickback",
        "accused_staff_id": "S20931",
        "accused_department": "CARDIO",
        "description": "患者家属反映：主治医生开药后收受医药代表回扣。",
        "amount_cny": "12000.00",
    },
    "visitor_log": {
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
    },
    "satisfaction": {
        "touchpoint": "settlement",
        "department": "OPD-PSY",
        "staff_id": "S11873",
        "score": 4,
        "comment": "结算窗口办理很快。",
    },
    "investigation_finding": {
        "case_id": "CASE-0123456789ABCDEF0123",
        "substantiated": True,
        "confirmed_categories": ["kickback"],
        "staff_ids": ["S20931"],
        "confirmed_amount_cny": "12000.00",
        "summary": "经查，该医生收受医药代表回扣一万二千元，情况属实。",
    },
    "promotion_application": {
        "staff_id": "S20931",
        "application_id": "APP-2026-0012",
        "target_position": "副主任医师",
    },
    "red_envelope_surrender": {
        "staff_id": "S11873",
        "amount_cny": "500.00",
        "received_on": "2026-11-19",
        "surrendered_on": "2026-11-20",
    },
    "prescription_ranking": {
        "staff_id": "S20931",
        "department": "CARDIO",
        "item_code": "D00123",
        "item_name": "注射用某某钠",
        "item_kind": "drug",
        "month": "2026-10",
        "rank": 1,
        "justified": False,
    },
    "training_held": {
        "department": "PSY-WARD-2",
        "held_on": "2026-11-18",
        "topic": "《医疗机构工作人员廉洁从业九项准则》专题学习",
        "kind": "study",
        "attendee_ids": ["S20931", "S11873"],
        "headcount": 4,
    },
    "kpi_observation": {
        "metric": "complaint_investigation_rate",
        "scope": "hospital",
        "period": "2026-10",
        "value": "0.9500",
    },
    "rectification_status": {
        "department": "OPD-PSY",
        "item": "专家号统揽加价问题整改",
        "status": "perfunctory",
        "note": "仅张贴告示，未调整放号机制。",
    },
    "case_action": {
        "case_id": "CASE-0123456789ABCDEF0123",
        "action": "start_investigation",
        "actor_staff_id": "S0101",
    },
}


def valid_record(kind: EventKind, source_ref: str, **overrides: Any) -> dict[str, Any]:
    return {
        **FACTS[kind.event_type],
        "event_type": kind.event_type,
        "source_system": TEST_SOURCE,
        "source_ref": source_ref,
        "occurred_at": OCCURRED_AT,
        **overrides,
    }


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def new_ref(label: str) -> str:
    return f"RAW-{label}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Produced:
    """A record this test put on the raw topic, where Kafka wrote it."""

    value: bytes | None
    key: bytes | None
    partition: int
    offset: int


@pytest.fixture
async def producer(infra: InfraSettings) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await kafka.start()
    yield kafka
    await kafka.stop()


async def produce(kafka: AIOKafkaProducer, value: bytes | None, key: bytes | None) -> Produced:
    metadata = await kafka.send_and_wait(RAW, value=value, key=key)
    return Produced(value, key, int(metadata.partition), int(metadata.offset))


def at_position(records: list[Record], produced: Produced) -> list[DeadLetter]:
    """The dead letters (among ``records`` of the dead-letter topic) for one raw record."""
    letters = [DeadLetter.model_validate_json(record.value) for record in records]
    return [
        letter
        for letter in letters
        if (letter.source_topic, letter.source_partition, letter.source_offset)
        == (RAW, produced.partition, produced.offset)
    ]


def has_event_id(event_id: uuid.UUID) -> Callable[[Record], bool]:
    wanted = str(event_id)
    return lambda record: record.event_id() == wanted


def with_source_ref(records: list[Record], source_ref: str) -> list[Record]:
    found = []
    for record in records:
        body = record.json()
        if isinstance(body, dict) and body.get("source_ref") == source_ref:
            found.append(record)
    return found


async def committed_offset(bootstrap: str, group: str, partition: int) -> int:
    """The next raw-topic offset ``group`` will read in ``partition`` (-1: none committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    committed = offsets.get(TopicPartition(RAW, partition))
    return -1 if committed is None else int(committed.offset)


async def delete_raw_records_before(bootstrap: str, offsets: dict[int, int]) -> None:
    """Delete the raw topic's records before ``offsets`` (per partition number)."""
    if not offsets:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records(
            {TopicPartition(RAW, p): RecordsToDelete(offset) for p, offset in offsets.items()}
        )
    finally:
        await admin.close()


async def drop_database(infra: InfraSettings, name: str) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    try:
        await client.drop_database(name)
    finally:
        await client.close()


@pytest.fixture
async def intake(infra: InfraSettings, unique: str) -> AsyncIterator[RunningIntake]:
    settings = intake_settings(infra, unique, retry_backoff_max_seconds=RETRY_PAUSE)
    await start_from_now(settings, "intake", RAW)
    try:
        async with running_intake(settings) as running:
            yield running
    finally:
        await drop_database(infra, settings.mongo_db)


# --- every event type -------------------------------------------------------------------


async def test_a_valid_record_of_every_event_type_is_published_on_its_fact_topic(
    intake: RunningIntake, producer: AIOKafkaProducer, infra: InfraSettings
) -> None:
    bootstrap = infra.kafka_bootstrap
    since = {kind.topic: await end_offsets(bootstrap, kind.topic) for kind in CATALOGUE}
    dead_since = await end_offsets(bootstrap, topics.DEAD_LETTERS)
    records = {kind.event_type: valid_record(kind, new_ref(kind.event_type)) for kind in CATALOGUE}
    produced = [
        await produce(producer, encode(record), key=record["source_ref"].encode())
        for record in records.values()
    ]

    for kind in CATALOGUE:
        sent = records[kind.event_type]
        event_id = derive_event_id(sent["source_system"], sent["source_ref"])
        (published,) = await wait_for(
            bootstrap, kind.topic, has_event_id(event_id), since=since[kind.topic]
        )
        event = kind.event.model_validate_json(published.value)
        submission = kind.submission.model_validate(sent)
        assert event.event_id == event_id
        assert published.key == kind.key(event)
        for name in set(type(submission).model_fields) - submission.private_fields:
            assert getattr(event, name) == getattr(submission, name), (kind.event_type, name)

    dead = await published_since(bootstrap, topics.DEAD_LETTERS, dead_since)
    assert [letter for p in produced for letter in at_position(dead, p)] == []


async def test_a_complaint_published_with_kcat_is_accepted_with_its_chinese_text_intact(
    intake: RunningIntake, infra: InfraSettings
) -> None:
    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat (Debian package kcat) must be installed for this test"
    bootstrap = infra.kafka_bootstrap
    source_ref = new_ref("kcat")
    description = "患者家属反映：外科医生𠮷某收受红包两千元，并称“不给就排不上手术”。"
    record = valid_record(
        BY_TYPE["complaint"],
        source_ref,
        category="red_envelope",
        description=description,
        amount_cny="2000.00",
        complainant_contact={"name": "王女士", "phone": "13800138000"},
    )
    since = await end_offsets(bootstrap, topics.COMPLAINTS)

    process = await asyncio.create_subprocess_exec(
        kcat,
        "-P",
        "-b",
        bootstrap,
        "-t",
        RAW,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(encode(record) + b"\n"), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")

    event_id = derive_event_id("portal", source_ref)
    (published,) = await wait_for(bootstrap, topics.COMPLAINTS, has_event_id(event_id), since=since)
    body = published.json()
    assert body["description"] == description
    assert body["category"] == "red_envelope"
    assert body["contact_on_file"] is True
    assert "complainant_contact" not in body
    assert b"13800138000" not in published.value
    assert "王女士" not in published.value.decode("utf-8")


# --- refused records --------------------------------------------------------------------

REFUSED = (
    "not_json",
    "not_utf8",
    "invalid",
    "unknown_type",
    "conflict",
    "as_another_sender",
    "loosely_typed",
)

EXPECTED_REASON = {
    "not_json": "not_json",
    "not_utf8": "not_json",
    "invalid": "invalid",
    "unknown_type": "invalid",
    "conflict": "conflict",
    "as_another_sender": "forbidden",
    "loosely_typed": "invalid",
}

# What each refused record names as its source system, when it can be read at all.
EXPECTED_SOURCE = {
    "not_json": None,
    "not_utf8": None,
    "invalid": "portal",
    "unknown_type": "pharmacy",
    "conflict": "portal",
    "as_another_sender": "hr",
    "loosely_typed": "portal",
}

# Text in each refused record that must never travel on the dead-letter topic in clear.
PRIVATE_TEXT = {
    "not_json": ("13911112222",),
    "not_utf8": ("13922223333",),
    "invalid": ("13933334444", "赵敏"),
    "unknown_type": ("13944445555", "回扣账本"),
    "conflict": ("13955556666", "另有隐情"),
    "as_another_sender": ("13966667777", "冒名"),
    "loosely_typed": ("13966667777",),
}


@dataclass(frozen=True)
class RefusalScenario:
    """Refused records on the raw topic, one good record before and one behind them."""

    produced: dict[str, Produced]
    dead_letters: dict[str, list[DeadLetter]]
    dead_letter_bytes: list[bytes]
    first_event_id: uuid.UUID
    first_events: list[Record]
    sentinel_accepted: bool
    committed: int
    vault: Vault
    metrics: str
    """Intake's Prometheus metrics once the sentinel was accepted."""


def refused_records(first: dict[str, Any]) -> dict[str, bytes]:
    complaint = BY_TYPE["complaint"]
    invalid = valid_record(
        complaint,
        new_ref("invalid"),
        complainant_contact={"name": "赵敏", "phone": PRIVATE_TEXT["invalid"][0]},
    )
    del invalid["category"]
    return {
        "not_json": b'{"source_system": "portal", "description": "call '
        + PRIVATE_TEXT["not_json"][0].encode()
        + b'", "category": ',
        # A system that writes UTF-16 (with its byte-order mark) instead of UTF-8.
        "not_utf8": "\ufeff投诉：请回电 {}".format(PRIVATE_TEXT["not_utf8"][0]).encode("utf-16-le"),
        "invalid": encode(invalid),
        "unknown_type": encode(
            {
                "event_type": "bribe_ledger",
                "source_system": "pharmacy",
                "source_ref": new_ref("unknown"),
                "occurred_at": OCCURRED_AT,
                "note": f"回扣账本，联系 {PRIVATE_TEXT['unknown_type'][0]}",
            }
        ),
        "conflict": encode(
            {**first, "description": f"改口：另有隐情，请联系 {PRIVATE_TEXT['conflict'][0]}"}
        ),
        # A valid complaint, on the test sender's topic, in the name of the HR system.
        "as_another_sender": encode(
            valid_record(
                complaint,
                new_ref("as-another"),
                source_system="hr",
                description=f"冒名投诉，联系 {PRIVATE_TEXT['as_another_sender'][0]}",
            )
        ),
        # Lax readers would take "yes" for true and 5 for five seconds after 1970.
        "loosely_typed": encode(
            valid_record(
                complaint,
                new_ref("loose"),
                anonymous="yes",
                occurred_at=5,
                description=f"匿名举报，线索 {PRIVATE_TEXT['loosely_typed'][0]}",
            )
        ),
    }


@pytest.fixture(scope="module")
async def refusals(infra: InfraSettings) -> RefusalScenario:
    bootstrap = infra.kafka_bootstrap
    settings = intake_settings(infra, uuid.uuid4().hex[:12], retry_backoff_max_seconds=RETRY_PAUSE)
    complaint, satisfaction = BY_TYPE["complaint"], BY_TYPE["satisfaction"]
    first = valid_record(complaint, new_ref("first"))
    sentinel = valid_record(satisfaction, new_ref("sentinel"))
    key = f"refusals-{uuid.uuid4().hex}".encode()  # one key: one partition, in this order
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await start_from_now(settings, "intake", RAW)
    try:
        async with running_intake(settings) as running:
            since = {
                topic: await end_offsets(bootstrap, topic)
                for topic in (topics.COMPLAINTS, topics.SATISFACTION_RATINGS, topics.DEAD_LETTERS)
            }
            await kafka.start()
            produced = {"first": await produce(kafka, encode(first), key)}
            for name, value in refused_records(first).items():
                produced[name] = await produce(kafka, value, key)
            produced["sentinel"] = await produce(kafka, encode(sentinel), key)
            sentinel_id = derive_event_id(sentinel["source_system"], sentinel["source_ref"])
            sentinel_accepted = bool(
                await wait_for(
                    bootstrap,
                    topics.SATISFACTION_RATINGS,
                    has_event_id(sentinel_id),
                    since=since[topics.SATISFACTION_RATINGS],
                )
            )
            # The sentinel is behind every refused record in their partition: they are done.
            dead = await published_since(bootstrap, topics.DEAD_LETTERS, since[topics.DEAD_LETTERS])
            first_id = derive_event_id(first["source_system"], first["source_ref"])
            first_events = [
                record
                for record in await published_since(
                    bootstrap, topics.COMPLAINTS, since[topics.COMPLAINTS]
                )
                if record.event_id() == str(first_id)
            ]
            group = subscriber_group(settings.consumer_group("intake"), RAW)
            partition, sentinel_offset = produced["sentinel"].partition, produced["sentinel"].offset

            async def committed_past_sentinel() -> bool:
                return await committed_offset(bootstrap, group, partition) > sentinel_offset

            await eventually(committed_past_sentinel, within=20, what="the offset commit")
            scenario = RefusalScenario(
                produced=produced,
                dead_letters={name: at_position(dead, produced[name]) for name in produced},
                dead_letter_bytes=[
                    record.value
                    for name in REFUSED
                    for record in dead
                    if at_position([record], produced[name])
                ],
                first_event_id=first_id,
                first_events=first_events,
                sentinel_accepted=sentinel_accepted,
                committed=await committed_offset(bootstrap, group, partition),
                metrics=(await running.client.get("/metrics")).text,
                vault=running.vault,
            )
    finally:
        await kafka.stop()
        await drop_database(infra, settings.mongo_db)
    # Stopped: a running intake would also read the raw records of the tests that follow.
    return scenario


def the_dead_letter(refusals: RefusalScenario, name: str) -> DeadLetter:
    letters = refusals.dead_letters[name]
    assert len(letters) == 1, f"{name}: {len(letters)} dead letters"
    return letters[0]


@pytest.mark.parametrize("name", REFUSED)
def test_each_refused_record_gets_one_dead_letter_with_its_reason_and_source(
    refusals: RefusalScenario, name: str
) -> None:
    letter = the_dead_letter(refusals, name)
    produced = refusals.produced[name]

    assert letter.reason == EXPECTED_REASON[name]
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        RAW,
        produced.partition,
        produced.offset,
    )
    assert letter.source_system == EXPECTED_SOURCE[name]


@pytest.mark.parametrize("name", REFUSED)
def test_each_dead_letter_holds_the_original_bytes_sealed_to_that_dead_letter(
    refusals: RefusalScenario, name: str
) -> None:
    letter = the_dead_letter(refusals, name)
    produced = refusals.produced[name]

    assert letter.original is None  # never kept unsealed: it may hold contact details
    assert letter.original_sealed is not None
    assert letter.original_sealed != produced.value
    opened = refusals.vault.open(letter.original_sealed, bound_to=str(letter.dead_letter_id))
    assert opened == produced.value
    assert letter.key_sealed is not None
    assert refusals.vault.open(letter.key_sealed, bound_to=str(letter.dead_letter_id)) == (
        produced.key
    )
    with pytest.raises(SealError):
        refusals.vault.open(letter.original_sealed, bound_to=str(uuid.uuid4()))


@pytest.mark.parametrize("name", REFUSED)
def test_no_dead_letter_shows_the_private_text_of_a_refused_record(
    refusals: RefusalScenario, name: str
) -> None:
    assert refusals.dead_letter_bytes
    for value in refusals.dead_letter_bytes:
        readable = json.dumps(json.loads(value), ensure_ascii=False)
        for private in PRIVATE_TEXT[name]:
            assert private.encode() not in value
            assert private not in readable


def test_an_invalid_record_is_dead_lettered_naming_the_missing_field(
    refusals: RefusalScenario,
) -> None:
    letter = the_dead_letter(refusals, "invalid")

    assert letter.problems
    assert [p.field.split(".")[-1] for p in letter.problems] == ["category"]
    assert all(p.reason for p in letter.problems)


def test_a_loosely_typed_record_is_dead_lettered_naming_each_loose_field(
    refusals: RefusalScenario,
) -> None:
    letter = the_dead_letter(refusals, "loosely_typed")

    assert {p.field for p in letter.problems} == {"complaint.anonymous", "complaint.occurred_at"}


def test_a_record_of_an_unknown_event_type_is_dead_lettered_naming_the_event_type(
    refusals: RefusalScenario,
) -> None:
    letter = the_dead_letter(refusals, "unknown_type")

    assert [p.field for p in letter.problems] == ["event_type"]
    assert "bribe_ledger" not in letter.problems[0].reason


def test_a_record_in_the_name_of_another_source_system_is_refused_naming_source_system(
    refusals: RefusalScenario,
) -> None:
    letter = the_dead_letter(refusals, "as_another_sender")

    assert [p.field for p in letter.problems] == ["source_system"]
    assert TEST_SOURCE in letter.problems[0].reason


def test_a_conflicting_record_leaves_the_accepted_event_published_once_and_unchanged(
    refusals: RefusalScenario,
) -> None:
    assert len(refusals.first_events) == 1
    body = refusals.first_events[0].json()
    assert body["description"] == FACTS["complaint"]["description"]


def test_a_good_record_behind_the_refused_ones_is_still_accepted(
    refusals: RefusalScenario,
) -> None:
    assert refusals.sentinel_accepted
    assert refusals.dead_letters["sentinel"] == []
    assert refusals.dead_letters["first"] == []


def raw_topic_failures(metrics: str) -> float:
    """How often intake's raw-topic handler failed (and had its record retried)."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (
                sample.name == "qinglian_handler_failures_total"
                and sample.labels.get("topic") == RAW
            ):
                return sample.value
    return 0.0


def test_refused_records_are_dead_lettered_without_the_handler_failing_and_retrying(
    refusals: RefusalScenario,
) -> None:
    assert "qinglian_dead_letters_total" in refusals.metrics
    assert raw_topic_failures(refusals.metrics) == 0


def test_the_consumer_group_commits_past_every_refused_record(
    refusals: RefusalScenario,
) -> None:
    last_refused = max(refusals.produced[name].offset for name in REFUSED)
    assert refusals.committed > refusals.produced["sentinel"].offset > last_refused


# --- records that trip intake up before or after its validation -------------------------


@dataclass(frozen=True)
class Troublesome:
    value: Callable[[str], bytes]
    """The record's value, given a fresh source_ref."""
    headers: list[tuple[str, bytes]]
    expected: str
    """What intake should make of it: a dead letter with this reason, or "accepted"."""


def satisfaction_record(source_ref: str) -> bytes:
    return encode(valid_record(BY_TYPE["satisfaction"], source_ref))


# In this order, case i goes to partition i modulo the partition count, each followed by a
# good record. A case that stalls its partition would hide the cases after it on that
# partition, so only the binary header (lost, not stalled) shares one, ahead of another case.
TROUBLESOME = {
    "binary_header_value": Troublesome(
        satisfaction_record, [("traceparent", b"\xff\x00\x17")], "accepted"
    ),
    "deeply_nested_json": Troublesome(lambda _: b"[" * 5_000 + b"]" * 5_000, [], "not_json"),
    "json_content_type_without_json": Troublesome(
        lambda _: b"HIS export failed: see log",
        [("content-type", b"application/json")],
        "not_json",
    ),
    "integer_too_big_to_store": Troublesome(
        lambda ref: encode(valid_record(BY_TYPE["prescription_ranking"], ref, rank=2**64)),
        [],
        "invalid",
    ),
}


@dataclass(frozen=True)
class TroublesomeOutcome:
    dead_letters: list[DeadLetter]
    accepted: bool
    """The record itself became an event (when it is a good one)."""
    next_accepted: bool
    """The good record behind it became an event."""


@pytest.fixture(scope="module")
async def troublesome(infra: InfraSettings) -> dict[str, TroublesomeOutcome]:
    bootstrap = infra.kafka_bootstrap
    settings = intake_settings(infra, uuid.uuid4().hex[:12], retry_backoff_max_seconds=RETRY_PAUSE)
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await start_from_now(settings, "intake", RAW)
    outcomes: dict[str, TroublesomeOutcome] = {}
    written: dict[int, int] = {}
    try:
        async with running_intake(settings):
            ratings_since = await end_offsets(bootstrap, topics.SATISFACTION_RATINGS)
            dead_since = await end_offsets(bootstrap, topics.DEAD_LETTERS)
            partitions = sorted((await end_offsets(bootstrap, RAW)).keys())
            await kafka.start()
            sent: dict[str, tuple[Produced, str, str]] = {}
            for index, (name, case) in enumerate(TROUBLESOME.items()):
                partition = partitions[index % len(partitions)]
                source_ref = new_ref(name)
                value = case.value(source_ref)
                behind = valid_record(BY_TYPE["satisfaction"], new_ref(f"{name}-next"))
                metadata = await kafka.send_and_wait(
                    RAW, value=value, partition=partition, headers=case.headers
                )
                next_metadata = await kafka.send_and_wait(
                    RAW, value=encode(behind), partition=partition
                )
                written[partition] = int(next_metadata.offset) + 1
                sent[name] = (
                    Produced(value, None, int(metadata.partition), int(metadata.offset)),
                    str(derive_event_id(json.loads(value)["source_system"], source_ref))
                    if case.expected == "accepted"
                    else "",
                    str(derive_event_id(behind["source_system"], behind["source_ref"])),
                )
            seen: set[str | None] = set()

            async def every_next_record_accepted() -> bool:
                published = await published_since(
                    bootstrap, topics.SATISFACTION_RATINGS, ratings_since
                )
                seen.update(record.event_id() for record in published)
                return all(next_id in seen for _, _, next_id in sent.values())

            with contextlib.suppress(AssertionError):  # a stalled partition: judged per case
                await eventually(every_next_record_accepted, within=10, what="the good records")
            dead = await published_since(bootstrap, topics.DEAD_LETTERS, dead_since)
            for name, (produced, record_id, next_id) in sent.items():
                outcomes[name] = TroublesomeOutcome(
                    dead_letters=at_position(dead, produced),
                    accepted=record_id in seen,
                    next_accepted=next_id in seen,
                )
    finally:
        await kafka.stop()
        await drop_database(infra, settings.mongo_db)
        # Should intake ever stall on one of these again, every later intake reading the
        # shared raw topic from its beginning would too: remove them (and those before them).
        await delete_raw_records_before(bootstrap, written)
    return outcomes


@pytest.mark.parametrize("name", list(TROUBLESOME))
def test_a_troublesome_record_is_handled_and_its_partition_moves_on(
    troublesome: dict[str, TroublesomeOutcome], name: str
) -> None:
    outcome = troublesome[name]

    assert outcome.next_accepted, "the good record behind it was never accepted"
    if TROUBLESOME[name].expected == "accepted":
        assert outcome.accepted
        assert outcome.dead_letters == []
    else:
        assert [letter.reason for letter in outcome.dead_letters] == [TROUBLESOME[name].expected]


# --- repeats ----------------------------------------------------------------------------


async def publish_then_wait_for_a_sentinel(
    kafka: AIOKafkaProducer,
    bootstrap: str,
    values: list[bytes | None],
    key: bytes,
    ratings_since: Positions | None = None,
) -> list[Produced]:
    """Publish ``values`` and then a valid record behind them (same key, same partition);
    return once intake accepted that record, so intake is done with everything before it.
    ``ratings_since``: where the satisfaction topic ended before (default: now)."""
    since = ratings_since or await end_offsets(bootstrap, topics.SATISFACTION_RATINGS)
    produced = [await produce(kafka, value, key) for value in values]
    sentinel = valid_record(BY_TYPE["satisfaction"], new_ref("sentinel"))
    behind = await produce(kafka, encode(sentinel), key)
    assert {p.partition for p in produced} <= {behind.partition}
    sentinel_id = derive_event_id(sentinel["source_system"], sentinel["source_ref"])
    await wait_for(
        bootstrap, topics.SATISFACTION_RATINGS, has_event_id(sentinel_id), since=since, within=30
    )
    return produced


async def test_the_same_record_twice_on_the_raw_topic_is_published_once_and_not_dead_lettered(
    intake: RunningIntake, producer: AIOKafkaProducer, infra: InfraSettings
) -> None:
    bootstrap = infra.kafka_bootstrap
    record = valid_record(BY_TYPE["complaint"], new_ref("twice"))
    event_id = derive_event_id(record["source_system"], record["source_ref"])
    complaints_since = await end_offsets(bootstrap, topics.COMPLAINTS)
    dead_since = await end_offsets(bootstrap, topics.DEAD_LETTERS)

    copies = await publish_then_wait_for_a_sentinel(
        producer, bootstrap, [encode(record), encode(record)], key=record["source_ref"].encode()
    )

    complaints = await published_since(bootstrap, topics.COMPLAINTS, complaints_since)
    assert len([r for r in complaints if r.event_id() == str(event_id)]) == 1
    dead = await published_since(bootstrap, topics.DEAD_LETTERS, dead_since)
    assert [letter for copy in copies for letter in at_position(dead, copy)] == []


async def test_a_record_repeated_after_intake_restarts_is_not_published_again(
    infra: InfraSettings, unique: str, producer: AIOKafkaProducer
) -> None:
    bootstrap = infra.kafka_bootstrap
    settings = intake_settings(infra, unique, retry_backoff_max_seconds=RETRY_PAUSE)
    record = valid_record(BY_TYPE["kpi_observation"], new_ref("restart"))
    event_id = derive_event_id(record["source_system"], record["source_ref"])
    key = record["source_ref"].encode()
    topic = topics.KPI_OBSERVATIONS
    since = await end_offsets(bootstrap, topic)
    await start_from_now(settings, "intake", RAW)
    try:
        async with running_intake(settings):
            await publish_then_wait_for_a_sentinel(producer, bootstrap, [encode(record)], key)
        async with running_intake(settings):  # the same store and consumer group
            await publish_then_wait_for_a_sentinel(producer, bootstrap, [encode(record)], key)
    finally:
        await drop_database(infra, settings.mongo_db)

    published = await published_since(bootstrap, topic, since)
    assert len([r for r in published if r.event_id() == str(event_id)]) == 1


# --- anything at all on the raw topic ---------------------------------------------------


@dataclass(frozen=True)
class EditedRecord:
    """A valid record of ``event_type`` with some fields replaced and some removed; its
    source_ref is set, unique, when it is published."""

    event_type: str
    replaced: dict[str, Any]
    removed: frozenset[str]
    ascii_only: bool

    def build(self, source_ref: str) -> dict[str, Any]:
        record = valid_record(BY_TYPE[self.event_type], source_ref)
        record.update(self.replaced)
        for name in self.removed:
            record.pop(name, None)
        return record

    def encode(self, source_ref: str) -> bytes:
        return json.dumps(self.build(source_ref), ensure_ascii=self.ascii_only).encode("utf-8")


# Integers stay within 64 bits: bigger ones stall intake (a known bug, shown by
# test_a_troublesome_record_is_handled_and_its_partition_moves_on[integer_too_big_to_store]).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def edited_records(draw: st.DrawFn) -> EditedRecord:
    kind = draw(st.sampled_from(CATALOGUE))
    names = sorted({*FACTS[kind.event_type], "event_type", "occurred_at", "source_system", "extra"})
    return EditedRecord(
        event_type=kind.event_type,
        replaced=draw(
            st.dictionaries(
                st.sampled_from(names),
                json_values | st.sampled_from([s.event_type for s in CATALOGUE]),
                max_size=2,
            )
        ),
        removed=draw(st.frozensets(st.sampled_from([*names, "source_ref"]), max_size=1)),
        ascii_only=draw(st.booleans()),
    )


RawInput = bytes | None | EditedRecord

raw_inputs: st.SearchStrategy[RawInput] = st.one_of(
    st.binary(max_size=300),
    st.none(),  # a record without a value (a tombstone)
    json_values.map(lambda value: json.dumps(value).encode("utf-8")),
    edited_records(),
    st.sampled_from(
        [
            # (JSON nested deeper than Python's recursion limit stalls intake: see
            # test_a_troublesome_record_is_handled_and_its_partition_moves_on.)
            b"[" * 500 + b"]" * 500,
            b'{"event_type": "complaint", "source_system": "portal"}' * 3,
            "\ufeff{}".encode(),
        ]
    ),
)


@dataclass(frozen=True)
class RawTopicRun:
    intake: RunningIntake
    producer: AIOKafkaProducer
    bootstrap: str
    key: bytes
    dead_since: Positions
    facts_since: dict[str, Positions]


@pytest.fixture
async def raw_topic_run(
    intake: RunningIntake, producer: AIOKafkaProducer, infra: InfraSettings
) -> RawTopicRun:
    bootstrap = infra.kafka_bootstrap
    return RawTopicRun(
        intake=intake,
        producer=producer,
        bootstrap=bootstrap,
        key=f"hypothesis-{uuid.uuid4().hex}".encode(),
        dead_since=await end_offsets(bootstrap, topics.DEAD_LETTERS),
        facts_since={topic: await end_offsets(bootstrap, topic) for topic in topics.FACTS},
    )


def is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a stalled intake makes shrinking slow
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=raw_inputs)
async def test_every_raw_record_becomes_one_event_or_one_dead_letter_and_intake_keeps_going(
    raw_topic_run: RawTopicRun, raw: RawInput
) -> None:
    run = raw_topic_run
    source_ref = new_ref("any")
    value = raw.encode(source_ref) if isinstance(raw, EditedRecord) else raw
    (produced,) = await publish_then_wait_for_a_sentinel(
        run.producer,
        run.bootstrap,
        [value],
        run.key,
        ratings_since=run.facts_since[topics.SATISFACTION_RATINGS],
    )

    async def what_became_of_it() -> tuple[list[DeadLetter], list[Record]]:
        letters = at_position(
            await published_since(run.bootstrap, topics.DEAD_LETTERS, run.dead_since), produced
        )
        events: list[Record] = []
        if isinstance(raw, EditedRecord):
            event_type = raw.build(source_ref).get("event_type")
            if isinstance(event_type, str) and event_type in BY_TYPE:
                topic = BY_TYPE[event_type].topic
                published = await published_since(run.bootstrap, topic, run.facts_since[topic])
                events = with_source_ref(published, source_ref)
        return letters, events

    # Of one batch, intake publishes the events before the dead letters: the sentinel's event
    # can be out a moment before the record's dead letter.
    letters, events = await what_became_of_it()
    for _ in range(40):
        if letters or events:
            break
        await asyncio.sleep(0.25)
        letters, events = await what_became_of_it()

    outcome = {"dead letters": len(letters), "events": len(events)}
    assert outcome in ({"dead letters": 1, "events": 0}, {"dead letters": 0, "events": 1}), (
        outcome,
        value,
    )
    if isinstance(raw, EditedRecord) and not raw.replaced and not raw.removed:
        assert events, "an unedited valid record must be accepted"
    if not isinstance(raw, EditedRecord):
        assert letters, "only a record of a catalogued event type can be accepted"
    if letters:
        (letter,) = letters
        assert letter.reason in (
            "not_json",
            "invalid",
            "forbidden",
        )  # a new source_ref: no conflict
        if letter.reason == "forbidden":  # a valid record in another system's name
            assert isinstance(raw, EditedRecord)
            assert raw.build(source_ref).get("source_system") != TEST_SOURCE
        if value is None or not is_utf8(value):
            assert letter.reason == "not_json"
        if isinstance(raw, EditedRecord):  # JSON by construction
            assert letter.reason in ("invalid", "forbidden")
            assert letter.problems
