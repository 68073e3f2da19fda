"""Consuming in batches, under the one delivery policy every service keeps.

A subscriber gets up to ``max_records`` (200) records at once (aiokafka's ``getmany``), hands
them to its handler as one batch, and commits their offsets only after the handler returned
(``AckPolicy.NACK_ON_ERROR``: on an exception every partition of the batch is rewound to its
first record). What fails:

- the broker or the store is unreachable (an outage): the batch is rewound and tried again
  after a growing pause, for as long as the outage lasts; nothing is dead-lettered;
- a record that does not match its contract: sent at once to the dead-letter topic, whole,
  with the reason; the others are handled;
- anything else: the records are handled again one at a time, so that one record no handler
  can process (a poison message) is found; it is tried ``max_attempts`` times, then
  dead-lettered, and the records behind it are handled: none is skipped, none is lost.

Handlers are idempotent (ids derive from the input), so a record handled before a rewind is
handled again without effect.
"""

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from pymongo.errors import PyMongoError

from schemas.catalogue import MESSAGES
from schemas.dead_letter import DeadLetter, Problem
from schemas.topics import DEAD_LETTERS
from services.common.logs import correlated, ids_of
from services.common.metrics import counter
from services.common.store import is_transient

logger = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DELIVERY = "qinglian_delivery"
"""The broker context's name for the service's ``Delivery``."""

_DEAD_LETTER_NAMESPACE = uuid.UUID("0e6f1c52-7d2b-5f3a-9c41-8b2d6e5a7f90")


@dataclass(frozen=True)
class Received(Generic[T]):
    """A record as its handler gets it: the value, and where it came from."""

    value: T
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


Handler = Callable[[list[Received[T]]], Awaitable[None]]
Parse = Callable[[bytes], T]


class ContractError(ValueError):
    """A record's value does not match its contract: it fails the same way every time."""


def is_outage(error: BaseException) -> bool:
    """The broker or the store is unreachable or busy: wait it out, never dead-letter."""
    if isinstance(error, PyMongoError):
        return is_transient(error)
    return isinstance(error, KafkaError | ConnectionError | TimeoutError)


class Delivery:
    """What a service does with records that fail: pauses, retries, dead letters, metrics."""

    def __init__(
        self,
        *,
        service: str,
        broker: KafkaBroker,
        max_attempts: int,
        max_pause: float,
        registry: CollectorRegistry,
    ) -> None:
        self.service = service
        self.max_attempts = max_attempts
        self.max_pause = max_pause
        self.failures = counter("qinglian_handler_failures", registry)
        self.dead_letters = counter("qinglian_poison_messages", registry)
        # Declared on the broker, so the AsyncAPI document lists the service as a writer.
        self.publisher = broker.publisher(DEAD_LETTERS, schema=DeadLetter)
        broker.context.set_global(DELIVERY, self)

    def pause(self, attempts: int) -> float:
        return float(min(0.1 * 2**attempts, self.max_pause))

    async def deliver(
        self, records: Sequence[ConsumerRecord[Any, Any]], parse: Parse[T], handler: Handler[T]
    ) -> None:
        batch: list[Received[T]] = []
        for record in records:
            try:
                value = parse(record.value or b"")
            except ValueError as error:  # pydantic's ValidationError included
                await self.dead_letter(record, error, attempts=1, reason="invalid")
                continue
            batch.append(_received(record, value))
        if not batch:
            return
        try:
            await handler(batch)
        except Exception as error:
            await self._after_failure(batch[0], error, attempts=1, what=f"{len(batch)} records")
            for one in batch:
                await self._one_at_a_time(one, handler)
        else:
            # One line a batch, naming what it held, so a record's path can be followed.
            event_ids = [str(event_id) for one in batch if (event_id := ids_of(one.value)[0])]
            logger.info(
                "handled %d records of %s",
                len(batch),
                batch[0].topic,
                extra={"event_ids": event_ids},
            )

    async def _one_at_a_time(self, one: Received[T], handler: Handler[T]) -> None:
        with correlated(*ids_of(one.value)):
            for attempt in range(1, self.max_attempts + 1):
                try:
                    await handler([one])
                    return
                except Exception as error:
                    if attempt == self.max_attempts or isinstance(error, ContractError):
                        logger.exception(
                            "handler failed on %s[%d]@%d %d times; sent to the dead-letter topic",
                            one.topic,
                            one.partition,
                            one.offset,
                            attempt,
                        )
                        self.failures.labels(one.topic).inc()
                        await self.dead_letter(
                            one,
                            error,
                            attempts=attempt,
                            reason="invalid"
                            if isinstance(error, ContractError)
                            else "handler_failed",
                        )
                        return
                    await self._after_failure(one, error, attempts=attempt, what="record")

    async def _after_failure(
        self, first: Received[Any], error: Exception, *, attempts: int, what: str
    ) -> None:
        """Count, log and pause; an outage rewinds the whole batch (raises)."""
        self.failures.labels(first.topic).inc()
        pause = self.pause(attempts)
        logger.exception(
            "handler failed on %s (%s[%d]@%d); retrying in %.1f s",
            what,
            first.topic,
            first.partition,
            first.offset,
            pause,
        )
        await asyncio.sleep(pause)
        if is_outage(error):
            raise error

    async def dead_letter(
        self,
        record: "ConsumerRecord[Any, Any] | Received[Any]",
        error: Exception,
        *,
        attempts: int,
        reason: Literal["invalid", "handler_failed"],
    ) -> None:
        original = record.value if isinstance(record, ConsumerRecord) else None
        position = f"{self.service}/{record.topic}/{record.partition}/{record.offset}"
        letter = DeadLetter(
            dead_letter_id=uuid.uuid5(_DEAD_LETTER_NAMESPACE, position),
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            reason=reason,
            # The exception's type only: its message may quote the record's content.
            problems=(Problem(field="handler", reason=type(error).__name__),),
            original=original if original is not None else _original(record),
            key=record.key,
            failed_in=self.service,
            attempts=attempts,
            dead_lettered_at=datetime.now(UTC),
        )
        await self.publisher.publish(letter, key=letter.dead_letter_id.bytes)
        self.dead_letters.labels(record.topic).inc()


def _received(record: ConsumerRecord[Any, Any], value: T) -> Received[T]:
    return Received(
        value=value,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        headers=tuple(record.headers or ()),
    )


def _original(received: Received[Any]) -> bytes:
    value = received.value
    if isinstance(value, bytes):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    raise TypeError(f"cannot keep a {type(value).__name__} as a dead letter")


def parse_model(model: type[M]) -> Parse[M]:
    """A record's value read as ``model`` from its JSON."""
    return model.model_validate_json


def parse_raw(value: bytes) -> bytes:
    """A record's value as it came: the handler reads it (intake's raw topic)."""
    return value


def consume(
    router: KafkaRouter,
    *topics: str,
    group_id: str,
    parse: Parse[T],
    max_records: int = 200,
    description: str | None = None,
    **options: Any,
) -> Callable[[Handler[T]], Handler[T]]:
    """Register ``handler`` for batches of ``topics`` in a consumer group of its own
    (``<group_id>.<first topic>``), so that a rebalance of one subscriber (a new instance, a
    new topic) does not stop the service's others. ``options`` go to the consumer (aiokafka's
    names, e.g. ``max_poll_interval_ms``)."""

    def register(handler: Handler[T]) -> Handler[T]:
        async def deliver(
            message: KafkaMessage, delivery: Annotated[Delivery, Context(DELIVERY)]
        ) -> None:
            raw = message.raw_message
            records = raw if isinstance(raw, tuple) else (raw,)
            await delivery.deliver(records, parse, handler)

        router.subscriber(
            *topics,
            batch=True,
            max_records=max_records,
            batch_timeout_ms=20,
            group_id=subscriber_group(group_id, *topics),
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            title=f"{'+'.join(topics)}:{handler.__name__}",
            description=description or handler.__doc__,
            **options,
        )(deliver)
        return handler

    return register


def bound(handler: Callable[..., Awaitable[None]], *given: Any, **named: Any) -> Handler[Any]:
    """``handler`` with its dependencies given, under its own name and docstring (the
    subscriber's title and description in the AsyncAPI document)."""
    return functools.update_wrapper(functools.partial(handler, *given, **named), handler)


Take = Callable[[list[Any]], Awaitable[object]]
"""An application-layer method that takes the values of one batch (the records' messages)."""


def consumers(takes: Mapping[str, Take], *, group_id: str) -> KafkaRouter:
    """A router that consumes each topic of ``takes``, its records read as the topic's message
    (``schemas.catalogue.MESSAGES``), and hands the values of each batch to its method."""
    router = KafkaRouter()
    for topic, take in takes.items():
        consume(router, topic, group_id=group_id, parse=parse_model(MESSAGES[topic]))(
            _values_to(take)
        )
    return router


def _values_to(take: Take) -> Handler[Any]:
    async def handle(batch: list[Received[Any]]) -> None:
        await take([received.value for received in batch])

    # Under the method's name and docstring: the subscriber's title and description.
    return functools.update_wrapper(handle, take)


def subscriber_group(group_id: str, *topics: str) -> str:
    """The consumer group of one subscriber of a service."""
    more = f"+{len(topics) - 1}" if len(topics) > 1 else ""
    return f"{group_id}.{topics[0]}{more}"
