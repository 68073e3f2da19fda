"""Kafka through FastStream: one delivery policy for every service.

- Producers wait for every in-sync replica (acks=all) and are idempotent, so a retried send
  is written once.
- Consumers commit an offset only after the handler returned (AckPolicy.NACK_ON_ERROR: on an
  exception the consumer seeks back to the failed record). FastStream's default commits before
  the handler runs, which would lose a message whose handler fails.
- A failed record is retried after a growing pause, so a store outage is not a busy loop.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream._internal.basic_types import AsyncFuncAny
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from prometheus_client import CollectorRegistry, Counter

from schemas.topics import RETENTION_MS
from services.common.settings import ServiceSettings

logger = logging.getLogger(__name__)

RecordPosition = tuple[str, int, int]


class RetryBackoff:
    """Builds the middleware that pauses before a failed record is handled again."""

    def __init__(self, *, max_seconds: float, registry: CollectorRegistry) -> None:
        self.max_seconds = max_seconds
        self.failures: dict[RecordPosition, int] = {}
        self.retries = Counter(
            "qinglian_handler_failures",
            "Handler failures; the record is handled again after a pause.",
            ["topic"],
            registry=registry,
        )

    def __call__(self, msg: Any, /, **kwargs: Any) -> BaseMiddleware:
        return _RetryBackoffScope(msg, backoff=self, **kwargs)

    def pause_after(self, position: RecordPosition) -> float:
        attempts = self.failures.get(position, 0) + 1
        self.failures[position] = attempts
        self.retries.labels(position[0]).inc()
        return float(min(0.1 * 2**attempts, self.max_seconds))


class _RetryBackoffScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, backoff: RetryBackoff, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self.backoff = backoff

    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        record: Any = msg.raw_message  # one ConsumerRecord: these subscribers are not batched
        position: RecordPosition = (record.topic, record.partition, record.offset)
        try:
            result = await call_next(msg)
        except Exception:
            pause = self.backoff.pause_after(position)
            logger.exception("handler failed on %s[%d]@%d; retrying in %.1f s", *position, pause)
            await asyncio.sleep(pause)
            raise
        self.backoff.failures.pop(position, None)
        return result


def make_broker(
    settings: ServiceSettings, *, service: str, registry: CollectorRegistry
) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"qinglian-{service}",
        acks="all",
        enable_idempotence=True,
        middlewares=[
            KafkaPrometheusMiddleware(registry=registry, app_name=service),
            RetryBackoff(max_seconds=settings.retry_backoff_max_seconds, registry=registry),
        ],
        graceful_timeout=30.0,
    )


def subscribe(
    router: KafkaRouter, topic: str, *, group_id: str, **options: Any
) -> Callable[[Callable[..., Any]], DefaultSubscriber]:
    """A subscriber in the service's consumer group that commits only after handling."""
    return router.subscriber(  # type: ignore[no-any-return]
        topic,
        **options,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )


async def ensure_topics(settings: ServiceSettings, topics: tuple[str, ...]) -> None:
    """Create the service's topics if missing, with their retention (forever unless listed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication,
                topic_configs={
                    "retention.ms": str(RETENTION_MS.get(topic, -1)),
                    "min.insync.replicas": "1",
                },
            )
            for topic in topics
            if topic not in existing
        ]
        if missing:
            # Another instance may create a topic between our look and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
