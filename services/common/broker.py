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
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream import AckPolicy
from faststream._internal.basic_types import AsyncFuncAny
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.publisher import DefaultPublisher
from faststream.kafka.security import parse_security
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from faststream.middlewares import BaseMiddleware
from faststream.security import BaseSecurity, SASLScram512
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from schemas.dead_letter import DeadLetter, Problem
from schemas.topics import DEAD_LETTERS, retention_ms
from services.common.logs import CorrelationMiddleware
from services.common.settings import ServiceSettings
from services.common.store import is_transient

logger = logging.getLogger(__name__)

RecordPosition = tuple[str, int, int]


_DEAD_LETTER_NAMESPACE = uuid.UUID("0e6f1c52-7d2b-5f3a-9c41-8b2d6e5a7f90")


def is_outage(error: BaseException) -> bool:
    """The broker or the store is unreachable or busy: wait it out, never dead-letter."""
    if isinstance(error, PyMongoError):
        return is_transient(error)
    return isinstance(error, KafkaError | ConnectionError | TimeoutError)


class RetryBackoff:
    """Builds the middleware that pauses before a failed record is handled again, and
    dead-letters a record that keeps failing for a reason other than an outage."""

    def __init__(
        self, *, service: str, max_seconds: float, max_attempts: int, registry: CollectorRegistry
    ) -> None:
        self.service = service
        self.max_seconds = max_seconds
        self.max_attempts = max_attempts
        self.failures: dict[RecordPosition, int] = {}
        self.publisher: DefaultPublisher | None = None
        """Set once the broker exists: the dead-letter topic's publisher, declared on the
        broker so the AsyncAPI document lists every service as writing that topic."""
        self.retries = Counter(
            "qinglian_handler_failures",
            "Handler failures; the record is handled again after a pause.",
            ["topic"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "qinglian_poison_messages",
            "Records sent to the dead-letter topic after failing every attempt, by topic.",
            ["topic"],
            registry=registry,
        )

    def __call__(self, msg: Any, /, **kwargs: Any) -> BaseMiddleware:
        return _RetryBackoffScope(msg, backoff=self, **kwargs)

    def attempts_after_failure(self, position: RecordPosition) -> int:
        attempts = self.failures.get(position, 0) + 1
        self.failures[position] = attempts
        self.retries.labels(position[0]).inc()
        return attempts

    def pause(self, attempts: int) -> float:
        return float(min(0.1 * 2**attempts, self.max_seconds))

    def gives_up(self, error: BaseException, attempts: int) -> bool:
        if is_outage(error):
            return False
        # A record that does not match its contract fails the same way every time.
        return isinstance(error, ValidationError) or attempts >= self.max_attempts

    async def dead_letter(self, record: Any, error: BaseException, attempts: int) -> None:
        if self.publisher is None:
            raise RuntimeError("RetryBackoff.publisher is not set")
        position = f"{self.service}/{record.topic}/{record.partition}/{record.offset}"
        letter = DeadLetter(
            dead_letter_id=uuid.uuid5(_DEAD_LETTER_NAMESPACE, position),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            reason="handler_failed",
            # The exception's type only: its message may quote the record's content.
            problems=(Problem(field="handler", reason=type(error).__name__),),
            original=record.value or b"",
            key=record.key,
            failed_in=self.service,
            attempts=attempts,
            dead_lettered_at=datetime.now(UTC),
        )
        await self.publisher.publish(letter, key=letter.dead_letter_id.bytes)
        self.dead_letters.labels(record.topic).inc()


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
                pause = self.backoff.pause(attempts)
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
            await self.backoff.dead_letter(record, error, attempts)
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
    retry_middleware: bool = True,
) -> KafkaBroker:
    """The service's broker. ``retry_middleware=False`` for a service whose subscribers all
    consume in batches (``consuming.consume``), whose ``Delivery`` retries and dead-letters
    in its stead (and declares the same metrics)."""
    backoff = RetryBackoff(
        service=service,
        max_seconds=settings.retry_backoff_max_seconds,
        max_attempts=settings.max_handler_attempts,
        registry=CollectorRegistry() if not retry_middleware else registry,
    )
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        security=kafka_security(settings),
        client_id=f"qinglian-{service}",
        acks="all",
        enable_idempotence=True,
        middlewares=[
            CorrelationMiddleware,
            KafkaPrometheusMiddleware(registry=registry, app_name=service),
            *([backoff] if retry_middleware else []),
        ],
        logger=logging.getLogger(f"qinglian.{service}.kafka"),
        graceful_timeout=30.0,
    )
    backoff.publisher = broker.publisher(DEAD_LETTERS, schema=DeadLetter)
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
