"""Kafka as the benchmarks use it: a reader outside any group, end offsets, topics made ready,
events published as intake publishes them."""

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.base import Event
from schemas.catalogue import CATALOGUE, EventKind

JSON_HEADERS = [("content-type", b"application/json")]
KIND_BY_CLASS: dict[type[Event], EventKind] = {kind.event: kind for kind in CATALOGUE}


def kind_of(event: Event) -> EventKind:
    return KIND_BY_CLASS[type(event)]


async def reader(bootstrap: str) -> AIOKafkaConsumer:
    """A started consumer outside any group, for reading by offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    # aiokafka 0.14 cancels, then awaits, its no-group task on stop(); had the task not run
    # yet, stop() raises CancelledError. One pass of the loop lets it start.
    await asyncio.sleep(0)
    return consumer


Batches = AsyncGenerator[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]], None]


async def batches_from(bootstrap: str, since: dict[TopicPartition, int]) -> Batches:
    """What is written to these partitions from these offsets on, as fetched, until the
    caller stops (or is cancelled)."""
    consumer = await reader(bootstrap)
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        while True:
            yield await consumer.getmany(timeout_ms=200)
    finally:
        await consumer.stop()


async def partitions_of(bootstrap: str, names: Iterable[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]


async def end_offsets(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    consumer = await reader(bootstrap)
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def topic_ends(bootstrap: str, names: Iterable[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of these (existing) topics."""
    return await end_offsets(bootstrap, await partitions_of(bootstrap, names))


async def leaders_elected(bootstrap: str, names: Iterable[str], *, patience: float = 60.0) -> None:
    """Wait until each partition has a leader (a topic just created has none for a moment, and
    sends to it are retried)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        give_up = time.monotonic() + patience
        while time.monotonic() < give_up:
            described = await admin.describe_topics(list(names))
            if all(
                topic["partitions"] and all(p["leader"] >= 0 for p in topic["partitions"])
                for topic in described
            ):
                return
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def producer(bootstrap: str, **options: object) -> AIOKafkaProducer:
    """Acknowledged by all replicas, idempotent: as the services produce."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **options
    )


async def publish(sender: AIOKafkaProducer, events: list[Event], *, chunk: int = 5000) -> None:
    """As intake publishes: JSON, on the event type's topic, with its key."""
    for start in range(0, len(events), chunk):
        sent = [
            await sender.send(
                kind_of(event).topic,
                event.model_dump_json().encode(),
                key=kind_of(event).key(event),
                headers=JSON_HEADERS,
            )
            for event in events[start : start + chunk]
        ]
        await asyncio.gather(*sent)


async def send_all(
    sender: AIOKafkaProducer,
    records: Iterable[tuple[str, bytes | None, bytes]],
    *,
    chunk: int = 5000,
) -> None:
    """(topic, key, value) records in order, awaited ``chunk`` at a time."""
    pending = []
    for topic, key, value in records:
        pending.append(await sender.send(topic, value, key=key, headers=JSON_HEADERS))
        if len(pending) >= chunk:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
