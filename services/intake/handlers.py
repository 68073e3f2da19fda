"""Kafka: records other systems publish directly to their raw topics, and case progress for
the reporters' follow-up view."""

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import CollectorRegistry, Counter
from pydantic import TypeAdapter, ValidationError

from schemas import topics
from schemas.base import SourceSystem
from schemas.case import CaseUpdated
from schemas.catalogue import ANY_SUBMISSION
from schemas.dead_letter import DeadLetter, Problem
from services.common.broker import subscribe
from services.common.raw_senders import RawSender, RawSenders
from services.intake.acceptance import Acceptance
from services.intake.crypto import Vault
from services.intake.domain import Outcome, problems_of
from services.intake.repository import IntakeStore

_source_system: TypeAdapter[SourceSystem] = TypeAdapter(SourceSystem)
_DEAD_LETTER_NAMESPACE = uuid.UUID("0d8f4f5e-2c1b-5a7e-8b1d-3e6f9a2c4b70")


class IntakeUnavailableError(RuntimeError):
    """Kafka or the store did not take an accepted record; the raw record is retried."""


def _named_source(body: bytes) -> str | None:
    """The source_system a refused record names, when it can be read at all."""
    try:
        value = json.loads(body).get("source_system")
        return _source_system.validate_python(value)
    except (ValueError, AttributeError, ValidationError, RecursionError):
        return None


async def _tolerant_headers(record: Any, parse: Callable[[Any], Awaitable[Any]]) -> Any:
    """Other systems' headers may not be UTF-8; FastStream would fail on them before the
    handler runs, and the record would be neither accepted nor dead-lettered."""
    record.headers = tuple(
        (name, value.decode("utf-8", "replace").encode()) for name, value in record.headers or ()
    )
    return await parse(record)


async def _body_as_is(message: Any, _decode: Callable[[Any], Awaitable[Any]]) -> Any:
    """The raw topic's bytes go to the handler undecoded: reading them is the handler's job
    (FastStream would decode JSON first, by content type, and fail outside the handler)."""
    return message.body


def build_routes(
    *,
    acceptance: Acceptance,
    vault: Vault,
    store: IntakeStore,
    senders: RawSenders,
    registry: CollectorRegistry,
    group_id: str,
) -> KafkaRouter:
    routes = KafkaRouter()
    raw_outcomes = Counter(
        "qinglian_intake_raw_records",
        "Records read from the raw topic, by outcome.",
        ["outcome"],
        registry=registry,
    )
    dead_letters = Counter(
        "qinglian_dead_letters",
        "Records sent to the dead-letter topic, by reason.",
        ["reason"],
        registry=registry,
    )
    dead_letter_publisher = routes.publisher(topics.DEAD_LETTERS, schema=DeadLetter)

    async def dead_letter(message: Any, reason: str, problems: list[Problem]) -> None:
        record = message.raw_message
        dead_letter_id = uuid.uuid5(
            _DEAD_LETTER_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}"
        )
        bound_to = str(dead_letter_id)
        letter = DeadLetter(
            dead_letter_id=dead_letter_id,
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            source_system=_named_source(message.body),
            reason=reason,
            problems=tuple(problems),
            original_sealed=vault.seal(message.body, bound_to=bound_to),
            key_sealed=vault.seal(record.key, bound_to=bound_to) if record.key else None,
            dead_lettered_at=datetime.now(UTC),
        )
        await dead_letter_publisher.publish(letter, key=dead_letter_id.bytes)
        dead_letters.labels(reason).inc()

    async def accept_raw(message: KafkaMessage, user: str, sender: RawSender) -> None:
        try:
            submission = ANY_SUBMISSION.validate_json(message.body)
        except ValidationError as error:
            errors = error.errors(include_input=False)
            not_json = any(e["type"] == "json_invalid" for e in errors)
            raw_outcomes.labels("not_json" if not_json else Outcome.INVALID).inc()
            await dead_letter(message, "not_json" if not_json else "invalid", problems_of(errors))
            return
        refusal = sender.refusal(
            user, source_system=submission.source_system, event_type=submission.event_type
        )
        if refusal is not None:
            raw_outcomes.labels(Outcome.FORBIDDEN).inc()
            await dead_letter(message, Outcome.FORBIDDEN.value, [refusal])
            return
        (result,) = await acceptance.submit([submission], now=datetime.now(UTC))
        raw_outcomes.labels(result.outcome).inc()
        if result.outcome is Outcome.UNAVAILABLE:
            raise IntakeUnavailableError("retrying: an accepted record could not be published")
        if result.outcome in (Outcome.INVALID, Outcome.CONFLICT):
            await dead_letter(message, result.outcome.value, list(result.problems))

    # One subscriber, and so one consumer group, per sender's topic: adding a sender starts
    # a reader of its topic and leaves the others where they are.
    for topic, user in senders.topics().items():
        _subscribe_raw(routes, topic, group_id, accept_raw, user, senders.senders[user])

    @subscribe(routes, topics.CASES, group_id=group_id)
    async def follow_case(case: CaseUpdated) -> None:
        # Every complaint the case rests on (the first and those linked to it) shows its state.
        for event_id in case.source_event_ids:
            await store.set_follow_up_status(
                event_id=str(event_id),
                status=str(case.state),
                case_id=case.case_id,
                revision=case.revision,
                at=case.updated_at,
            )

    return routes


RawHandler = Callable[[KafkaMessage, str, RawSender], Awaitable[None]]


def _subscribe_raw(
    routes: KafkaRouter,
    topic: str,
    group_id: str,
    accept_raw: RawHandler,
    user: str,
    sender: RawSender,
) -> None:
    async def accept_from_sender(message: KafkaMessage) -> None:
        await accept_raw(message, user, sender)

    subscribe(routes, topic, group_id=group_id, parser=_tolerant_headers, decoder=_body_as_is)(
        accept_from_sender
    )
