"""The consumer lag gauge on stand-ins for FastStream's subscribers and for the broker's
offsets (tests/integration/test_consumer_lag.py runs it on the real broker)."""

import asyncio
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.common.lag import ConsumerLag, OffsetRange


@dataclass
class FakeOffsets:
    """The broker's view: each partition's first and end offsets, each group's commits."""

    ranges: dict[TopicPartition, OffsetRange]
    commits: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    reachable: bool = True
    closed: bool = False

    def _answer(self) -> None:
        if not self.reachable:
            raise KafkaConnectionError("broker unreachable")

    async def partitions(self, topics: Collection[str]) -> list[TopicPartition]:
        self._answer()
        return [partition for partition in self.ranges if partition.topic in topics]

    async def ranges_of(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetRange]:
        self._answer()
        return {partition: self.ranges[partition] for partition in partitions}

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        self._answer()
        return self.commits.get(group, {})

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeSubscriber:
    group_id: str | None
    topic_names_for_subscribe: list[str]
    consumer: Any = None
    """Never asked: a stopped, stuck or expelled consumer does not change what waits."""


@dataclass
class FakeBroker:
    subscribers: list[FakeSubscriber]


def gauge(broker: FakeBroker, offsets: FakeOffsets) -> tuple[ConsumerLag, CollectorRegistry]:
    registry = CollectorRegistry()
    return ConsumerLag(cast(KafkaBroker, cast(Any, broker)), registry, offsets), registry


def lag_of(registry: CollectorRegistry) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["group"], s.labels["topic"], s.labels["partition"]): s.value
        for metric in registry.collect()
        if metric.name == "qinglian_consumer_lag"
        for s in metric.samples
    }


LEADS = [TopicPartition("leads", 0), TopicPartition("leads", 1)]
CASES = TopicPartition("cases", 0)


async def test_lag_is_the_end_offset_minus_the_committed_offset_per_partition() -> None:
    offsets = FakeOffsets(
        ranges={
            LEADS[0]: OffsetRange(0, 120),
            LEADS[1]: OffsetRange(0, 12),
            CASES: OffsetRange(3, 9),
        },
        commits={"g.leads": {LEADS[0]: 20, LEADS[1]: 12}, "g.cases": {CASES: 4}},
    )
    broker = FakeBroker(
        [FakeSubscriber("g.leads", ["leads"]), FakeSubscriber("g.cases", ["cases"])]
    )
    lag, registry = gauge(broker, offsets)

    await lag.refresh()

    assert lag_of(registry) == {
        ("g.leads", "leads", "0"): 100.0,
        ("g.leads", "leads", "1"): 0.0,
        ("g.cases", "cases", "0"): 5.0,
    }


async def test_records_arriving_while_no_consumer_runs_keep_the_gauge_growing() -> None:
    offsets = FakeOffsets(ranges={CASES: OffsetRange(0, 10)}, commits={"g": {CASES: 10}})
    lag, registry = gauge(FakeBroker([FakeSubscriber("g", ["cases"], consumer=None)]), offsets)
    await lag.refresh()
    assert lag_of(registry) == {("g", "cases", "0"): 0.0}

    offsets.ranges[CASES] = OffsetRange(0, 250)
    await lag.refresh()

    assert lag_of(registry) == {("g", "cases", "0"): 240.0}


@pytest.mark.parametrize(
    ("commits", "waiting"),
    [
        pytest.param({}, 60, id="nothing-committed-yet"),
        pytest.param({CASES: -1}, 60, id="no-offset-for-the-partition"),
        pytest.param({CASES: 10}, 60, id="committed-before-records-expired"),
        pytest.param({CASES: 75}, 25, id="committed-inside-the-log"),
    ],
)
async def test_a_group_that_committed_nothing_or_behind_the_log_start_waits_for_every_record_kept(
    commits: dict[TopicPartition, int], waiting: int
) -> None:
    # The log starts at 40 (older records expired by retention); a new group reads from the
    # earliest record kept (auto_offset_reset="earliest").
    offsets = FakeOffsets(ranges={CASES: OffsetRange(40, 100)}, commits={"g": commits})
    lag, registry = gauge(FakeBroker([FakeSubscriber("g", ["cases"])]), offsets)

    await lag.refresh()

    assert lag_of(registry) == {("g", "cases", "0"): float(waiting)}


async def test_while_the_broker_cannot_be_asked_the_lag_is_not_exported_rather_than_stale() -> None:
    offsets = FakeOffsets(ranges={CASES: OffsetRange(0, 10)})
    lag, registry = gauge(FakeBroker([FakeSubscriber("g", ["cases"])]), offsets)
    await lag.refresh()
    assert lag_of(registry) == {("g", "cases", "0"): 10.0}

    offsets.reachable = False
    with pytest.raises(KafkaConnectionError):
        await lag.refresh()
    assert lag_of(registry) == {}  # the absent series raises QinglianConsumerLagUnknown

    offsets.reachable = True
    offsets.ranges[CASES] = OffsetRange(0, 30)
    await lag.refresh()
    assert lag_of(registry) == {("g", "cases", "0"): 30.0}


async def test_a_subscriber_without_a_group_commits_nothing_and_has_no_lag_to_tell() -> None:
    offsets = FakeOffsets(ranges={CASES: OffsetRange(0, 10)})
    lag, registry = gauge(FakeBroker([FakeSubscriber(None, ["cases"])]), offsets)

    await lag.refresh()

    assert lag_of(registry) == {}


async def test_a_partition_that_is_gone_is_no_longer_exported() -> None:
    offsets = FakeOffsets(ranges={LEADS[0]: OffsetRange(0, 5), LEADS[1]: OffsetRange(0, 6)})
    lag, registry = gauge(FakeBroker([FakeSubscriber("g", ["leads"])]), offsets)
    await lag.refresh()
    assert set(lag_of(registry)) == {("g", "leads", "0"), ("g", "leads", "1")}

    del offsets.ranges[LEADS[1]]
    await lag.refresh()

    assert set(lag_of(registry)) == {("g", "leads", "0")}


async def test_the_refresh_loop_stops_when_cancelled_in_the_middle_of_a_round() -> None:
    # Answers are ready at once, as they mostly are: asyncio.wait_for on Python 3.11 returns
    # such a result and swallows the cancellation, and the service's shutdown waited forever.
    partitions = {TopicPartition("leads", n): OffsetRange(0, 10) for n in range(50)}
    broker = FakeBroker([FakeSubscriber(f"g{n}", ["leads"]) for n in range(20)])
    for _ in range(20):
        offsets = FakeOffsets(ranges=dict(partitions))
        lag, _ = gauge(broker, offsets)
        task = asyncio.create_task(lag.run(every=0))
        await asyncio.sleep(0.001)  # inside a round
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1.0)
        assert done == {task}, "the lag loop went on after it was cancelled"
        assert task.cancelled()
        assert offsets.closed, "the lag loop left its Kafka clients open"
