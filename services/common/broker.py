"""Kafka through FastStream: one delivery policy for every service.

- Producers wait for every in-sync replica (acks=all) and are idempotent, so a retried send
  is written once.
- Consumers commit an offset only after the handler returned (AckPolicy.NACK_ON_ERROR: on an
  exception the consumer seeks back to the failed record). FastStream's default commits before
  the handler runs, which would lose a message whose handler fails.
- A failed record is retried after a growing pause, so a store outage is not a busy loop.
  While the broker or the store is unreachable it is retried for as long as that lasts;
  any other failure (a record no handler can process: a poison message) is retried a bounded
  number of times, then sent whole to the dead-letter topic with the reason, and the records
  behind it flow on. The redrive command sends it back once the cause is fixed.
- Every Kafka client a service or command creates (this broker, the admin client creating
  topics, the rebuild and redrive readers) gets its connection and security from
  ``kafka_security`` / ``kafka_client_options``: SASL/SCRAM-SHA-512 when the settings name a
  user and password file, none for local runs.
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
from faststream.kafka.security import parse_security
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from faststream.security import BaseSecurity, SASLScram512
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from schemas.topics import retention_ms
from services.common.consuming import Delivery, is_outage
from services.common.logs import CorrelationMiddleware
from services.common.settings import ServiceSettings

logger = logging.getLogger(__name__)

RecordPosition = tuple[str, int, int]


class RetryBackoff:
    """Builds the middleware that keeps the delivery policy for subscribers that take one record
    at a time: it pauses before a failed record is handled again, and dead-letters a record that
    keeps failing for a reason other than an outage. Batches keep the same policy in
    ``services.common.consuming.Delivery``, whose counters and dead-letter publisher it uses."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self.failures: dict[RecordPosition, int] = {}

    def __call__(self, msg: Any, /, **kwargs: Any) -> BaseMiddleware:
        return _RetryBackoffScope(msg, backoff=self, **kwargs)

    def attempts_after_failure(self, position: RecordPosition) -> int:
        attempts = self.failures.get(position, 0) + 1
        self.failures[position] = attempts
        self.delivery.failures.labels(position[0]).inc()
        return attempts

    def gives_up(self, error: BaseException, attempts: int) -> bool:
        if is_outage(error):
            return False
        # A record that does not match its contract fails the same way every time.
        return isinstance(error, ValidationError) or attempts >= self.delivery.max_attempts


class _RetryBackoffScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, backoff: RetryBackoff, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self.backoff = backoff

    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        record: Any = msg.raw_message
        if isinstance(record, tuple):  # a batch: services.common.consuming keeps its policy
            return await call_next(msg)
        position: RecordPosition = (record.topic, record.partition, record.offset)
        try:
            result = await call_next(msg)
        except Exception as error:
            attempts = self.backoff.attempts_after_failure(position)
            if not self.backoff.gives_up(error, attempts):
                pause = self.backoff.delivery.pause(attempts)
                logger.exception(
                    "handler failed on %s[%d]@%d; retrying in %.1f s", *position, pause
                )
                await asyncio.sleep(pause)
                raise
            logger.exception(
                "handler failed on %s[%d]@%d %d times; sent to the dead-letter topic",
                *position,
                attempts,
            )
            await self.backoff.delivery.dead_letter(
                record, error, attempts=attempts, reason="handler_failed"
            )
            self.backoff.failures.pop(position, None)
            return None
        self.backoff.failures.pop(position, None)
        return result


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """FastStream's security for the settings' SASL user, or None (no authentication)."""
    credentials = settings.kafka_credentials()
    if credentials is None:
        return None
    username, password = credentials
    if settings.kafka_sasl_mechanism == "SCRAM-SHA-512":
        return SASLScram512(username=username, password=password.get_secret_value())
    raise ValueError(f"unsupported SASL mechanism {settings.kafka_sasl_mechanism!r}")


def kafka_client_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client (admin, consumer, producer): the bootstrap
    servers and the same security the broker gets, translated by FastStream's own
    ``parse_security`` so the two can never differ."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        **parse_security(kafka_security(settings)),
    }


def make_broker(
    settings: ServiceSettings,
    *,
    service: str,
    registry: CollectorRegistry,
) -> KafkaBroker:
    """The service's broker, with its delivery policy (``Delivery``, in the broker's context
    as ``DELIVERY``) for batches and single records alike."""
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        security=kafka_security(settings),
        client_id=f"qinglian-{service}",
        acks="all",
        enable_idempotence=True,
        logger=logging.getLogger(f"qinglian.{service}.kafka"),
        graceful_timeout=30.0,
    )
    delivery = Delivery(
        service=service,
        broker=broker,
        max_attempts=settings.max_handler_attempts,
        max_pause=settings.retry_backoff_max_seconds,
        registry=registry,
    )
    for middleware in (
        CorrelationMiddleware,
        KafkaPrometheusMiddleware(registry=registry, app_name=service),
        RetryBackoff(delivery),
    ):
        broker.add_middleware(middleware)
    return broker


def subscriber_group(group_id: str, *topics: str) -> str:
    """The consumer group of one subscriber of a service: its own, so that a rebalance of one
    (a new instance, a new topic) does not stop the service's other subscribers."""
    more = f"+{len(topics) - 1}" if len(topics) > 1 else ""
    return f"{group_id}.{topics[0]}{more}"


def subscribe(
    router: KafkaRouter, *topics: str, group_id: str, **options: Any
) -> Callable[[Callable[..., Any]], DefaultSubscriber]:
    """A subscriber in a consumer group of its own under the service's ``group_id``, that
    commits only after handling."""
    return router.subscriber(  # type: ignore[no-any-return]
        *topics,
        **options,
        group_id=subscriber_group(group_id, *topics),
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )


async def ensure_topics(settings: ServiceSettings, topics: tuple[str, ...]) -> None:
    """Create the service's topics if missing, with their retention (``retention_ms``)."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=topic,
                num_partitions=settings.kafka_partitions,
                replication_factor=settings.kafka_replication,
                topic_configs={
                    "retention.ms": str(retention_ms(topic)),
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
