"""Consumer lag as a Prometheus gauge: how many records wait behind each subscriber.

FastStream's metrics count messages received, processed and published, but none says how far
a consumer is behind its topic. This gauge does, per consumer group, topic and partition: the
partition's end offset (where the next record written will go) minus the group's committed
offset (consumers commit only after handling, so it is the first record not yet handled),
both asked of the broker every interval.

Not from the service's own consumers: a consumer's high watermark is only as fresh as its last
fetch, and it stops fetching a partition while the records it holds wait for a slow or stuck
handler (the gauge showed 4,460 with about 7,350 waiting); and a consumer that stopped, or left
its group because a handler was stuck past ``max_poll_interval_ms``, has no partition to report
on, so the series vanished. Asked of the broker, the lag of a group nobody consumes keeps
growing as records arrive.

While the broker cannot be asked the series are removed rather than left stale;
``QinglianConsumerLagUnknown`` (deploy/prometheus/alerts.yml) fires on their absence. Every
instance of a service reports its groups' whole lag, so the alerts take the maximum over
instances, not the sum.

It opens two Kafka clients of its own (an admin client and a consumer in no group) with the
broker's security (``services.common.broker.kafka_client_options``). Reading offsets needs
Describe on the topics and groups, which the services' Read permission includes.
"""

import asyncio
import logging
from collections.abc import Collection, Iterable
from typing import NamedTuple, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from services.common.broker import kafka_client_options
from services.common.metrics import gauge
from services.common.settings import ServiceSettings

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
ROUND_SECONDS = 15.0
"""A round that has not had its answers by then is abandoned (the broker is unreachable)."""
CLIENT_ID = "qinglian-consumer-lag"

Labels = tuple[str, str, str]


class OffsetRange(NamedTuple):
    start: int
    """The first offset the partition still keeps (older records expired)."""
    end: int
    """Where the next record written to the partition will go."""


class Offsets(Protocol):
    """What the gauge asks the broker."""

    async def partitions(self, topics: Collection[str]) -> list[TopicPartition]: ...

    async def ranges_of(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetRange]: ...

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets; a partition it never committed is missing or -1."""
        ...

    async def close(self) -> None: ...


class BrokerOffsets:
    """Offsets from the broker, through clients started at the first question."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def _started(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self.clients is None:
            admin = AIOKafkaAdminClient(**kafka_client_options(self.settings), client_id=CLIENT_ID)
            reader = AIOKafkaConsumer(
                **kafka_client_options(self.settings),
                client_id=CLIENT_ID,
                group_id=None,
                enable_auto_commit=False,
            )
            try:
                await admin.start()
                await reader.start()
            except BaseException:
                await admin.close()
                await reader.stop()
                raise
            self.clients = admin, reader
        return self.clients

    async def partitions(self, topics: Collection[str]) -> list[TopicPartition]:
        admin, _ = await self._started()
        described = await admin.describe_topics(sorted(topics))
        return [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]

    async def ranges_of(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetRange]:
        _, reader = await self._started()
        asked = list(partitions)
        if not asked:
            return {}
        starts = await reader.beginning_offsets(asked)
        ends = await reader.end_offsets(asked)
        return {partition: OffsetRange(starts[partition], ends[partition]) for partition in asked}

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        admin, _ = await self._started()
        offsets = await admin.list_consumer_group_offsets(group)
        return {partition: meta.offset for partition, meta in offsets.items()}

    async def close(self) -> None:
        if self.clients is not None:
            admin, reader = self.clients
            self.clients = None
            await admin.close()
            await reader.stop()


def subscriptions(broker: KafkaBroker) -> dict[str, set[str]]:
    """The topics of each consumer group the broker's subscribers read, whether their
    consumers run or not. A subscriber without a group commits nothing: it has no lag."""
    groups: dict[str, set[str]] = {}
    for subscriber in broker.subscribers:
        group = getattr(subscriber, "group_id", None)
        if group is not None:
            groups.setdefault(group, set()).update(subscriber.topic_names_for_subscribe)  # type: ignore[attr-defined]
    return groups


def waiting(offsets: OffsetRange, committed: int | None) -> int:
    """Records not yet handled: from the committed offset, or from the first record kept when
    nothing was committed (a new group reads from the earliest) or the commit has expired."""
    handled_up_to = offsets.start if committed is None else max(committed, offsets.start)
    return max(offsets.end - handled_up_to, 0)


class ConsumerLag:
    def __init__(self, broker: KafkaBroker, registry: CollectorRegistry, offsets: Offsets) -> None:
        self.broker = broker
        self.offsets = offsets
        self.gauge = gauge("qinglian_consumer_lag", registry)
        self.known: set[Labels] = set()
        self.readable = True

    async def measure(self) -> dict[Labels, int]:
        groups = subscriptions(self.broker)
        partitions = await self.offsets.partitions(set().union(*groups.values()))
        ranges = await self.offsets.ranges_of(partitions)
        lags: dict[Labels, int] = {}
        for group, topics in groups.items():
            committed = await self.offsets.committed(group)
            for partition, offsets in ranges.items():
                if partition.topic in topics:
                    done = committed.get(partition, -1)
                    labels = (group, partition.topic, str(partition.partition))
                    lags[labels] = waiting(offsets, done if done >= 0 else None)
        return lags

    async def refresh(self) -> None:
        try:
            lags = await self.measure()
        except BaseException:
            self._forget(self.known)  # unknown, not stale
            raise
        for labels, value in lags.items():
            self.gauge.labels(*labels).set(value)
        self._forget(self.known - set(lags))  # a topic or partition gone
        self.known = set(lags)

    def _forget(self, gone: set[Labels]) -> None:
        for labels in gone:
            self.gauge.remove(*labels)
        self.known -= gone

    async def run(self, every: float = REFRESH_SECONDS) -> None:
        try:
            while True:
                await self.round()
                await asyncio.sleep(every)
        finally:
            await self.offsets.close()

    async def round(self) -> None:
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that comes as the
            # answer is ready, so this loop would hold the service's shutdown forever.
            async with asyncio.timeout(ROUND_SECONDS):
                await self.refresh()
        except Exception:  # the next round asks again; say so once per outage
            if self.readable:
                logger.warning("cannot read the consumer lag from the broker", exc_info=True)
            self.readable = False
        else:
            if not self.readable:
                logger.info("the consumer lag is readable again")
            self.readable = True
