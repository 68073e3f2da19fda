"""Kafka: the records other systems publish straight to their raw topics, a batch at a time.

Each record is read as a submission of any type (intake reads the bytes itself); one that
cannot be read, or that its sender may not send (another source system, an event type not its
own), is refused; the others of the batch are accepted with one acceptance call (one wave of
store writes and publishes). Each refusal goes to the dead-letter topic with its reason and
the original bytes sealed with intake's key (they may hold a complainant's phone number).
While Kafka or the store cannot take an accepted record, the whole batch is tried again (an
outage, ``IntakeUnavailableError``), nothing is dead-lettered meanwhile, and a record accepted
the first time is a duplicate the second.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

from faststream import BaseMiddleware
from faststream.kafka import KafkaRouter
from pydantic import TypeAdapter, ValidationError

from schemas import topics
from schemas.base import SourceSystem, Submission
from schemas.catalogue import ANY_SUBMISSION
from schemas.dead_letter import DeadLetter, Problem, problems_of
from services.common.consuming import Received, bound, consume, parse_raw
from services.common.publishing import Publish
from services.common.raw_senders import RawSender, RawSenders
from services.common.service import Clock
from services.intake.acceptance import Acceptance
from services.intake.crypto import Vault
from services.intake.domain import SubmissionStatus
from services.intake.metrics import IntakeMetrics

_source_system: TypeAdapter[SourceSystem] = TypeAdapter(SourceSystem)
_DEAD_LETTER_NAMESPACE = uuid.UUID("0d8f4f5e-2c1b-5a7e-8b1d-3e6f9a2c4b70")
_REFUSED_LATER = (SubmissionStatus.INVALID, SubmissionStatus.CONFLICT)


class IntakeUnavailableError(ConnectionError):
    """Kafka or the store did not take an accepted record: an outage, the batch is retried."""


@dataclass(frozen=True)
class RawIntake:
    """What the raw topics' handler works with."""

    acceptance: Acceptance
    vault: Vault
    publish: Publish
    metrics: IntakeMetrics
    clock: Clock


@dataclass(frozen=True)
class _Refusal:
    record: Received[bytes]
    reason: str
    problems: list[Problem]


def _read(record: Received[bytes], user: str, sender: RawSender) -> Submission | _Refusal:
    try:
        submission: Submission = ANY_SUBMISSION.validate_json(record.value)
    except ValidationError as error:
        errors = error.errors(include_input=False)
        not_json = any(e["type"] == "json_invalid" for e in errors)
        return _Refusal(record, "not_json" if not_json else "invalid", problems_of(errors))
    refusal = sender.refusal(
        user,
        source_system=submission.source_system,
        event_type=submission.event_type,  # type: ignore[attr-defined]
    )
    if refusal is not None:
        return _Refusal(record, SubmissionStatus.FORBIDDEN.value, [refusal])
    return submission


async def accept_raw(
    intake: RawIntake, user: str, sender: RawSender, batch: list[Received[bytes]]
) -> None:
    """Accept what a raw sender published: each record becomes one event or one dead letter."""
    read = [(record, _read(record, user, sender)) for record in batch]
    refusals = [found for _, found in read if isinstance(found, _Refusal)]
    valid = [(record, found) for record, found in read if not isinstance(found, _Refusal)]
    results = await intake.acceptance.submit([s for _, s in valid], now=intake.clock())
    for refusal in refusals:
        intake.metrics.raw_records.labels(refusal.reason).inc()
    for (record, _), result in zip(valid, results, strict=True):
        intake.metrics.raw_records.labels(result.status).inc()
        if result.status in _REFUSED_LATER:
            refusals.append(_Refusal(record, result.status.value, list(result.problems)))
    if any(result.status is SubmissionStatus.UNAVAILABLE for result in results):
        raise IntakeUnavailableError("retrying: an accepted record could not be published")
    await asyncio.gather(*(_dead_letter(intake, refusal) for refusal in refusals))


async def _dead_letter(intake: RawIntake, refusal: _Refusal) -> None:
    record = refusal.record
    dead_letter_id = uuid.uuid5(
        _DEAD_LETTER_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}"
    )
    bound_to = str(dead_letter_id)
    letter = DeadLetter(
        dead_letter_id=dead_letter_id,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        source_system=_named_source(record.value),
        reason=refusal.reason,
        problems=tuple(refusal.problems),
        original_sealed=intake.vault.seal(record.value, bound_to=bound_to),
        key_sealed=intake.vault.seal(record.key, bound_to=bound_to) if record.key else None,
        dead_lettered_at=intake.clock(),
    )
    await intake.publish(letter, topics.DEAD_LETTERS, dead_letter_id.bytes)
    intake.metrics.dead_letters.labels(refusal.reason).inc()


def _named_source(body: bytes) -> str | None:
    """The source_system a refused record names, when it can be read at all."""
    try:
        value = json.loads(body).get("source_system")
        return _source_system.validate_python(value)
    except (ValueError, AttributeError, ValidationError, RecursionError):
        return None


class BytesAsSent(BaseMiddleware):
    """Intake reads a raw record's bytes itself. FastStream would first decode each header
    (failing on bytes that are not UTF-8) and the value by its content type (failing on a
    value that is not what its type says, or JSON nested too deeply), before any handler runs:
    such a record would be neither accepted nor dead-lettered, and its partition would stall.
    So as a record arrives, its headers are made readable (intake reads none) and its content
    type says bytes."""

    async def on_receive(self) -> None:
        records: Any = self.msg if isinstance(self.msg, tuple) else (self.msg,)
        for record in records:
            record.headers = (
                *(
                    (name, value.decode("utf-8", "replace").encode())
                    for name, value in record.headers or ()
                    if name.lower() != "content-type"
                ),
                ("content-type", b"application/octet-stream"),
            )


def routes(group_id: str, intake: RawIntake, senders: RawSenders) -> KafkaRouter:
    router = KafkaRouter(middlewares=(BytesAsSent,))
    # One subscriber, and so one consumer group, per sender's topic: adding a sender starts
    # a reader of its topic and leaves the others where they are.
    for topic, user in senders.topics().items():
        consume(router, topic, group_id=group_id, parse=parse_raw)(
            bound(accept_raw, intake, user, senders.senders[user])
        )
    return router
