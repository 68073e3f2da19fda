"""The consumer lag gauge, on stand-ins for FastStream's subscribers and aiokafka's consumers."""

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.common.lag import ConsumerLag


@dataclass
class FakeConsumer:
    highwaters: dict[TopicPartition, int | None]
    positions: dict[TopicPartition, int]
    taken_away: set[TopicPartition] = field(default_factory=set)
    """Assigned when asked for the assignment, gone when asked for the position."""

    def assignment(self) -> set[TopicPartition]:
        return set(self.highwaters)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters[partition]

    async def position(self, partition: TopicPartition) -> int:
        if partition in self.taken_away:
            raise IllegalStateError(f"Partition {partition} is not assigned")
        return self.positions[partition]


@dataclass
class FakeSubscriber:
    group_id: str | None
    consumer: FakeConsumer | None


@dataclass
class FakeBroker:
    subscribers: list[FakeSubscriber]


def lag_of(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for metric in registry.collect()
        if metric.name == "qinglian_consumer_lag"
        for s in metric.samples
    }


async def test_lag_is_the_high_watermark_minus_the_position_per_partition() -> None:
    leads = [TopicPartition("leads", 0), TopicPartition("leads", 1)]
    cases = TopicPartition("cases", 2)
    consumer = FakeConsumer(
        highwaters={leads[0]: 120, leads[1]: 7, cases: None},
        positions={leads[0]: 20, leads[1]: 9, cases: 0},
    )
    broker = FakeBroker(
        [
            FakeSubscriber("g.leads", consumer),
            FakeSubscriber("g.idle", None),  # not started yet
        ]
    )
    registry = CollectorRegistry()
    lag = ConsumerLag(cast(KafkaBroker, cast(Any, broker)), registry)

    await lag.refresh()

    # A position past the last known high watermark (fetched since) is no lag, not a negative
    # one; a partition nothing was fetched from yet has no lag to tell.
    assert lag_of(registry) == {("g.leads", "leads", "0"): 100.0, ("g.leads", "leads", "1"): 0.0}


async def test_a_partition_taken_away_by_a_rebalance_is_no_longer_exported() -> None:
    partitions = [TopicPartition("leads", 0), TopicPartition("leads", 1)]
    consumer = FakeConsumer(
        highwaters=dict.fromkeys(partitions, 10), positions=dict.fromkeys(partitions, 4)
    )
    registry = CollectorRegistry()
    lag = ConsumerLag(
        cast(KafkaBroker, cast(Any, FakeBroker([FakeSubscriber("g", consumer)]))), registry
    )
    await lag.refresh()
    assert set(lag_of(registry)) == {("g", "leads", "0"), ("g", "leads", "1")}

    consumer.taken_away.add(partitions[1])  # between the assignment and the position
    await lag.refresh()
    assert lag_of(registry) == {("g", "leads", "0"): 6.0}

    del consumer.highwaters[partitions[0]]  # moved to another instance
    await lag.refresh()
    assert lag_of(registry) == {}


async def test_the_refresh_loop_stops_when_cancelled_in_the_middle_of_a_round() -> None:
    # Positions are ready at once, as they mostly are: asyncio.wait_for on Python 3.11 returns
    # such a result and swallows the cancellation, and the service's shutdown waited forever.
    partitions = [TopicPartition("leads", n) for n in range(50)]
    consumer = FakeConsumer(
        highwaters=dict.fromkeys(partitions, 10), positions=dict.fromkeys(partitions, 4)
    )
    broker = FakeBroker([FakeSubscriber("g", consumer)])
    for _ in range(20):
        lag = ConsumerLag(cast(KafkaBroker, cast(Any, broker)), CollectorRegistry())
        task = asyncio.create_task(lag.run(every=0))
        await asyncio.sleep(0.001)  # inside a round of positions
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        assert done == {task}, "the lag loop went on after it was cancelled"
        assert task.cancelled()
