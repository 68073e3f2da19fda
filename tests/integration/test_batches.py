"""Batch consumption under the delivery policy, against the real Kafka broker: a batch is
committed only after its handler succeeded; a record that breaks its contract, or that no
handler can process, is dead-lettered and the records behind it are handled; an outage is
waited out, never dead-lettered."""

import json
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from schemas.dead_letter import DeadLetter
from schemas.topics import DEAD_LETTERS
from services.common.broker import ensure_topics, make_broker
from services.common.consuming import Received, consume, parse_model, subscriber_group
from tests.conftest import InfraSettings
from tests.integration.kafka_reading import end_offsets, published_since
from tests.waiting import eventually

pytestmark = pytest.mark.infra


class Item(BaseModel):
    n: int


Handler = Callable[[list[Received[Item]]], Awaitable[None]]


async def committed(settings: InfraSettings, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(subscriber_group(group, topic))
    finally:
        await admin.close()
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


@pytest.fixture
async def topic(infra: InfraSettings, unique: str) -> str:
    name = f"test.batches.{unique}"
    await ensure_topics(infra.model_copy(update={"kafka_partitions": 1}), (name, DEAD_LETTERS))
    return name


async def run(
    settings: InfraSettings, topic: str, group: str, handler: Handler, values: list[bytes]
) -> KafkaBroker:
    """Publish ``values`` first, then start a broker consuming them with ``handler``."""
    configured = settings.model_copy(
        update={"max_handler_attempts": 3, "retry_backoff_max_seconds": 0.2}
    )
    broker = make_broker(configured, service=group, registry=CollectorRegistry())
    routes = KafkaRouter()
    consume(routes, topic, group_id=group, parse=parse_model(Item))(handler)
    broker.include_router(routes)
    await broker.connect()
    for value in values:
        await broker.publish(value, topic, key=b"same")  # one partition: one order
    await broker.start()
    return broker


def items(*numbers: int) -> list[bytes]:
    return [json.dumps({"n": n}).encode() for n in numbers]


async def test_records_come_in_batches_and_are_committed_after_them(
    infra: InfraSettings, topic: str, unique: str
) -> None:
    batches: list[list[int]] = []

    async def handle(batch: list[Received[Item]]) -> None:
        batches.append([one.value.n for one in batch])

    broker = await run(infra, topic, f"g-{unique}", handle, items(*range(300)))
    try:
        await eventually(lambda: sum(map(len, batches)) == 300, what="every record")
    finally:
        await broker.stop()
    assert [n for batch in batches for n in batch] == list(range(300))
    assert len(batches) < 300  # batched, not one call per record
    assert await committed(infra, f"g-{unique}", topic) == 300


async def test_a_poison_record_is_dead_lettered_and_none_behind_it_is_skipped(
    infra: InfraSettings, topic: str, unique: str
) -> None:
    handled: list[int] = []
    tried_poison = 0

    async def handle(batch: list[Received[Item]]) -> None:
        nonlocal tried_poison
        if any(one.value.n == 13 for one in batch):
            tried_poison += len(batch) == 1
            raise RuntimeError("no handler can process 13")
        handled.extend(one.value.n for one in batch)

    since = await end_offsets(infra.kafka_bootstrap, DEAD_LETTERS)
    broker = await run(infra, topic, f"g-{unique}", handle, items(*range(30)))
    try:
        await eventually(lambda: len(handled) == 29, what="every record but the poison one")
    finally:
        await broker.stop()
    assert sorted(handled) == [n for n in range(30) if n != 13]
    assert tried_poison == 3  # max_attempts
    letters = [
        DeadLetter.model_validate_json(record.value)
        for record in await published_since(infra.kafka_bootstrap, DEAD_LETTERS, since)
    ]
    ours = [letter for letter in letters if letter.source_topic == topic]
    assert [(one.reason, one.attempts, json.loads(one.original or b"")) for one in ours] == [
        ("handler_failed", 3, {"n": 13})
    ]
    assert await committed(infra, f"g-{unique}", topic) == 30


async def test_a_record_that_breaks_its_contract_is_dead_lettered_at_once(
    infra: InfraSettings, topic: str, unique: str
) -> None:
    handled: list[int] = []

    async def handle(batch: list[Received[Item]]) -> None:
        handled.extend(one.value.n for one in batch)

    since = await end_offsets(infra.kafka_bootstrap, DEAD_LETTERS)
    values = [*items(1), b"not json{", json.dumps({"n": "two"}).encode(), *items(3)]
    broker = await run(infra, topic, f"g-{unique}", handle, values)
    try:
        await eventually(lambda: handled == [1, 3], what="the valid records")
    finally:
        await broker.stop()
    letters = [
        DeadLetter.model_validate_json(record.value)
        for record in await published_since(infra.kafka_bootstrap, DEAD_LETTERS, since)
    ]
    ours = sorted(
        (letter.source_offset, letter.reason, letter.original)
        for letter in letters
        if letter.source_topic == topic
    )
    assert ours == [(1, "invalid", b"not json{"), (2, "invalid", b'{"n": "two"}')]


async def test_an_outage_is_waited_out_and_nothing_is_dead_lettered_or_committed(
    infra: InfraSettings, topic: str, unique: str
) -> None:
    attempts = 0

    async def store_down(batch: list[Received[Item]]) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("store unavailable")

    since = await end_offsets(infra.kafka_bootstrap, DEAD_LETTERS)
    broker = await run(infra, topic, f"g-{unique}", store_down, items(1, 2, 3))
    try:
        await eventually(lambda: attempts > 5, what="repeated attempts")
    finally:
        await broker.stop()
    assert await committed(infra, f"g-{unique}", topic) == 0
    letters = await published_since(infra.kafka_bootstrap, DEAD_LETTERS, since)
    assert not [r for r in letters if DeadLetter.model_validate_json(r.value).source_topic == topic]

    handled: list[int] = []

    async def store_back(batch: list[Received[Item]]) -> None:
        handled.extend(one.value.n for one in batch)

    restarted = await run(infra, topic, f"g-{unique}", store_back, [])
    try:
        await eventually(lambda: handled == [1, 2, 3], what="the records after the outage")
    finally:
        await restarted.stop()


async def test_topics_are_created_once_with_unlimited_retention(
    infra: InfraSettings, unique: str
) -> None:
    topic = f"test.topics.{unique}"
    await ensure_topics(infra, (topic,))
    await ensure_topics(infra, (topic,))  # a second start finds it and leaves it alone
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    assert len(description["partitions"]) == infra.kafka_partitions
    entries = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
    assert entries["retention.ms"] == "-1"
