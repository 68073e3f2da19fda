"""Kafka as the benchmarks use it: a reader outside any group, end offsets, topics made ready,
events published as intake publishes them."""

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.base import Event
from schemas.catalogue import CATALOGUE, EventKind

JSON_HEADERS = [("content-type", b"application/json")]
KIND_BY_CLASS: dict[type[Event], EventKind] = {kind.event: kind for kind in CATALOGUE}


def kind_of(event: Event) -> EventKind:
    return KIND_BY_CLASS[type(event)]


async def reader(bootstrap: str, **options: Any) -> AIOKafkaConsumer:
    """A started consumer outside any group (unless ``options`` name one), for reading by offset."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    # aiokafka 0.14 cancels, then awaits, its no-group task on stop(); had the task not run
    # yet, stop() raises CancelledError. One pass of the loop lets it start.
    await asyncio.sleep(0)
    return consumer


@asynccontextmanager
async def admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


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
    async with admin(bootstrap) as client:
        described = await client.describe_topics(list(names))
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


async def commit_ends(bootstrap: str, group: str, names: Iterable[str]) -> None:
    """Commit the end of these topics (those that exist) for ``group``: it starts there."""
    async with admin(bootstrap) as client:
        existing = set(await client.list_topics())
    partitions = await partitions_of(bootstrap, [name for name in names if name in existing])
    if not partitions:
        return  # nothing was written before
    consumer = await reader(bootstrap, group_id=group)
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def leaders_elected(bootstrap: str, names: Iterable[str], *, patience: float = 60.0) -> None:
    """Wait until each partition has a leader (a topic just created has none for a moment, and
    sends to it are retried)."""
    async with admin(bootstrap) as client:
        give_up = time.monotonic() + patience
        while time.monotonic() < give_up:
            described = await client.describe_topics(list(names))
            if all(
                topic["partitions"] and all(p["leader"] >= 0 for p in topic["partitions"])
                for topic in described
            ):
                return
            await asyncio.sleep(0.5)


def producer(bootstrap: str, **options: object) -> AIOKafkaProducer:
    """Acknowledged by all replicas, idempotent: as the services produce."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **options
    )


async def publish(sender: AIOKafkaProducer, events: list[Event], *, chunk: int = 5000) -> None:
    """As intake publishes: JSON, on the event type's topic, with its key."""
    records = (
        (kind_of(event).topic, kind_of(event).key(event), event.model_dump_json().encode())
        for event in events
    )
    await send_all(sender, records, chunk=chunk)


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
