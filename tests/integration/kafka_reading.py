"""Reading what a service published, straight from the real broker, for tests.

No consumer group: the partitions are assigned and read from a given position (or the
beginning), so nothing is committed and a test never disturbs a service's own offsets.

Two ways to look:
- ``read_range``: every record between two positions. Use it when the publish is already
  acknowledged (intake answers only after Kafka's ack): take ``end_offsets`` before the
  request, then read up to the end offsets after it. Bounded and exact, so it also shows that
  nothing was published.
- ``wait_for``: poll until records matching a test appear, for effects that happen later
  (a consumer republishing what it read).
"""

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Positions = dict[int, int]
"""Offset per partition number of one topic."""


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes

    def json(self) -> Any:
        return json.loads(self.value)

    def event_id(self) -> str | None:
        """The ``event_id`` of a JSON object record, or None."""
        try:
            body = self.json()
        except ValueError:
            return None
        return str(body.get("event_id")) if isinstance(body, dict) else None


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )


async def _partitions(bootstrap: str, topic: str, within: float) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        deadline = time.monotonic() + within
        while True:
            (description,) = await admin.describe_topics([topic])
            numbers = sorted(p["partition"] for p in description["partitions"])
            if numbers:
                return [TopicPartition(topic, number) for number in numbers]
            if time.monotonic() > deadline:
                raise AssertionError(f"topic {topic} has no partitions after {within} s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str, *, within: float = 10.0) -> Positions:
    """Where the next record of each partition of ``topic`` will be written."""
    partitions = await _partitions(bootstrap, topic, within)
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()  # nothing assigned, so nothing is being fetched
    return {tp.partition: offset for tp, offset in ends.items()}


async def _read(
    bootstrap: str,
    topic: str,
    *,
    since: Positions | None,
    until: Positions | None,
    done: Callable[[list[Record]], bool],
    within: float,
) -> list[Record]:
    partitions = await _partitions(bootstrap, topic, within)
    if until is not None and all(
        until.get(tp.partition, 0) <= (since or {}).get(tp.partition, 0) for tp in partitions
    ):
        return []  # an empty range: nothing to fetch
    consumer = _consumer(bootstrap)
    await consumer.start()
    records: list[Record] = []
    fetched = False
    try:
        consumer.assign(partitions)
        for tp in partitions:
            if since is None:
                consumer.seek(tp, 0)
            else:
                consumer.seek(tp, since.get(tp.partition, 0))
        deadline = time.monotonic() + within
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {within} s reading {topic}: {len(records)} records read"
                )
            batches = await consumer.getmany(timeout_ms=200)
            for tp, messages in batches.items():
                fetched = fetched or bool(messages)
                for message in messages:
                    if until is not None and message.offset >= until.get(tp.partition, 0):
                        continue
                    records.append(
                        Record(tp.topic, tp.partition, message.offset, message.key, message.value)
                    )
            if until is not None:
                positions = [await _position(consumer, tp) for tp in partitions]
                if all(
                    at >= until.get(tp.partition, 0)
                    for tp, at in zip(partitions, positions, strict=True)
                ):
                    break
        return records
    finally:
        if not fetched:
            # aiokafka's stop right after start can raise CancelledError from its fetcher;
            # give the fetcher a moment to settle first.
            await asyncio.sleep(0.2)
        await consumer.stop()


async def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    position: int = await consumer.position(tp)
    return position


async def read_range(
    bootstrap: str, topic: str, *, since: Positions, until: Positions, within: float = 20.0
) -> list[Record]:
    """Every record of ``topic`` from ``since`` up to, not including, ``until``."""
    return await _read(
        bootstrap, topic, since=since, until=until, done=lambda _: False, within=within
    )


async def published_since(bootstrap: str, topic: str, since: Positions) -> list[Record]:
    """Every record written to ``topic`` after ``since`` and before now."""
    return await read_range(
        bootstrap, topic, since=since, until=await end_offsets(bootstrap, topic)
    )


async def wait_for(
    bootstrap: str,
    topic: str,
    match: Callable[[Record], bool],
    *,
    count: int = 1,
    since: Positions | None = None,
    within: float = 30.0,
) -> list[Record]:
    """The first ``count`` records matching ``match`` from ``since`` (the beginning if None);
    fails after ``within`` seconds."""
    found = await _read(
        bootstrap,
        topic,
        since=since,
        until=None,
        done=lambda records: sum(1 for r in records if match(r)) >= count,
        within=within,
    )
    return [record for record in found if match(record)][:count]


def with_event_id(records: Iterable[Record], event_id: object) -> list[Record]:
    """The records whose JSON body carries this ``event_id``."""
    wanted = str(event_id)
    return [record for record in records if record.event_id() == wanted]
