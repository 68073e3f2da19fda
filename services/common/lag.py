"""Consumer lag as a Prometheus gauge: how many records wait behind each subscriber.

FastStream's metrics count messages received, processed and published, but none says how far
a consumer is behind its topic. This gauge does, per consumer group, topic and partition: the
partition's high watermark (the offset the next record written will get) minus the consumer's
position (the offset of the next record it will hand to its handler), both as aiokafka's
consumer knows them from its fetches. A handler that is slow, stuck on a record it retries, or
a store outage, makes it grow; a service that is down stops exporting it (QinglianServiceDown
covers that).

It opens no Kafka connection of its own: it asks the consumers the broker built, which carry
the broker's security (``services.common.broker.kafka_security``).
"""

import asyncio
import logging

from aiokafka.errors import IllegalStateError
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Gauge

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0

Labels = tuple[str, str, str]


class ConsumerLag:
    def __init__(self, broker: KafkaBroker, registry: CollectorRegistry) -> None:
        self.broker = broker
        self.gauge = Gauge(
            "qinglian_consumer_lag",
            "Records not yet handed to a subscriber's handler: the partition's high watermark "
            "minus the consumer's position, by consumer group, topic and partition.",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.known: set[Labels] = set()

    async def refresh(self) -> None:
        seen: set[Labels] = set()
        for subscriber in self.broker.subscribers:
            consumer = getattr(subscriber, "consumer", None)
            group = getattr(subscriber, "group_id", None)
            if consumer is None or group is None:  # not started, or stopping
                continue
            for partition in consumer.assignment():
                try:
                    highwater = consumer.highwater(partition)
                    if highwater is None:  # nothing fetched from it yet
                        continue
                    # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
                    # comes as the position is ready (mostly at once), so this loop would go
                    # on after its task was cancelled and hold the service's shutdown forever.
                    async with asyncio.timeout(1.0):
                        position = await consumer.position(partition)
                # A rebalance may take the partition away between the two questions.
                except (AssertionError, IllegalStateError, TimeoutError):
                    continue
                labels = (group, partition.topic, str(partition.partition))
                self.gauge.labels(*labels).set(max(highwater - position, 0))
                seen.add(labels)
        for gone in self.known - seen:  # moved to another instance by a rebalance
            self.gauge.remove(*gone)
        self.known = seen

    async def run(self, every: float = REFRESH_SECONDS) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the next round tries again; the reason is logged
                logger.exception("could not refresh the consumer lag gauge")
            await asyncio.sleep(every)
