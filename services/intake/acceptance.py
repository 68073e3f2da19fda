"""Accepting submissions: the one path HTTP (single and batch) and the raw topic share.

For each submission: check it, derive its event id, and either
- record it as pending, publish it, mark it published: ``accepted``;
- find it recorded with the same fingerprint: ``duplicate`` (published again only if an
  earlier attempt stopped before Kafka acknowledged it);
- find it recorded with another fingerprint: ``conflict``.
A submission is answered ``accepted`` only after Kafka acknowledged it (acks=all), and
``unavailable`` at once while Kafka cannot be reached: the idempotent producer never gives up on
a record it was handed, so one handed over during an outage would hold the answer until Kafka is
back (or be published after an answer that said nothing was accepted).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from pymongo.errors import PyMongoError

from schemas.base import Event, Submission, derive_event_id
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintSubmission
from schemas.dead_letter import Problem
from services.common.store import Document
from services.common.tokens import token_digest
from services.intake.crypto import Vault, new_follow_up_code
from services.intake.domain import Outcome, canonical, judge_repeat, timing_problems
from services.intake.repository import IntakeStore

logger = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[None]]
Reachable = Callable[[], Awaitable[bool]]


async def _assume_reachable() -> bool:
    return True


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    event_id: UUID | None = None
    follow_up_code: str | None = None
    """Complaints only: the reporter's key to follow the case; given to the sender alone."""
    problems: tuple[Problem, ...] = ()


@dataclass
class _Item:
    submission: Submission
    event: Event
    fingerprint: str
    record: Document
    follow_up_code: str | None = None
    result: Result | None = field(default=None)


@dataclass(frozen=True)
class _Repeat:
    first: _Item
    fingerprint: str


class Acceptance:
    def __init__(
        self,
        *,
        store: IntakeStore,
        vault: Vault,
        publish: Publish,
        future_tolerance: timedelta,
        kafka_reachable: Reachable = _assume_reachable,
    ) -> None:
        self.store = store
        self.vault = vault
        self.publish = publish
        self.future_tolerance = future_tolerance
        self.kafka_reachable = kafka_reachable

    async def submit(self, submissions: Sequence[Submission], *, now: datetime) -> list[Result]:
        entries: list[Result | _Item | _Repeat] = []
        items: dict[str, _Item] = {}
        for submission in submissions:
            problems = timing_problems(submission, now=now, tolerance=self.future_tolerance)
            if problems:
                entries.append(Result(Outcome.INVALID, problems=tuple(problems)))
                continue
            event_id = str(derive_event_id(submission.source_system, submission.source_ref))
            fingerprint = self.vault.fingerprint(canonical(submission))
            if event_id in items:  # the same source reference twice in one batch
                entries.append(_Repeat(items[event_id], fingerprint))
                continue
            items[event_id] = self._prepare(submission, fingerprint, now=now)
            entries.append(items[event_id])

        try:
            await self._record_and_publish(items, now=now)
        except PyMongoError as error:  # the store is down or failing: nothing is accepted
            logger.warning("intake store unavailable: %s", type(error).__name__)
            for item in items.values():
                item.result = Result(Outcome.UNAVAILABLE, event_id=item.event.event_id)
        return [self._result_of(entry) for entry in entries]

    async def _record_and_publish(self, items: dict[str, "_Item"], *, now: datetime) -> None:
        # Records inserted by an earlier try of this same call (the store blinked) carry its
        # claim, so they are told apart from another request's.
        claim = uuid4().hex
        for item in items.values():
            item.record["claim"] = claim
        existing_ids = await self.store.insert_pending([item.record for item in items.values()])
        stored = await self.store.find(existing_ids) if existing_ids else {}
        existing_ids = {i for i in existing_ids if stored[i].get("claim") != claim}
        to_publish = [item for event_id, item in items.items() if event_id not in existing_ids]
        for event_id in existing_ids:
            item, earlier = items[event_id], stored[event_id]
            if (
                judge_repeat(
                    stored_fingerprint=earlier["fingerprint"], fingerprint=item.fingerprint
                )
                is Outcome.CONFLICT
            ):
                item.result = Result(Outcome.CONFLICT, event_id=item.event.event_id)
                continue
            # The event as first received, with the follow-up code first given.
            item.event = type(item.event).model_validate(earlier["event"])
            item.follow_up_code = self._open_follow_up_code(earlier)
            item.result = Result(Outcome.DUPLICATE, item.event.event_id, item.follow_up_code)
            if earlier.get("published_at") is None:
                to_publish.append(item)  # an earlier attempt stopped before Kafka's ack

        published = await self._publish(to_publish, now=now)
        for item in to_publish:
            if item.event.event_id not in published:
                item.result = Result(Outcome.UNAVAILABLE, event_id=item.event.event_id)
            elif item.result is None:
                item.result = Result(Outcome.ACCEPTED, item.event.event_id, item.follow_up_code)

    @staticmethod
    def _result_of(entry: "Result | _Item | _Repeat") -> Result:
        if isinstance(entry, Result):
            return entry
        if isinstance(entry, _Repeat):
            first = entry.first
            if (
                judge_repeat(stored_fingerprint=first.fingerprint, fingerprint=entry.fingerprint)
                is Outcome.CONFLICT
            ):
                return Result(Outcome.CONFLICT, first.event.event_id)
            first_result = Acceptance._result_of(first)
            if first_result.outcome in (Outcome.ACCEPTED, Outcome.DUPLICATE):
                return Result(Outcome.DUPLICATE, first.event.event_id, first.follow_up_code)
            return first_result
        return entry.result or Result(Outcome.UNAVAILABLE, event_id=entry.event.event_id)

    def _prepare(self, submission: Submission, fingerprint: str, *, now: datetime) -> _Item:
        kind = BY_TYPE[submission.event_type]  # type: ignore[attr-defined]
        derived: dict[str, object] = {}
        follow_up_code = None
        record: Document = {"fingerprint": fingerprint, "received_at": now, "published_at": None}
        if isinstance(submission, ComplaintSubmission):
            event_id = str(derive_event_id(submission.source_system, submission.source_ref))
            follow_up_code = new_follow_up_code()
            record["follow_up"] = {
                "digest": token_digest(follow_up_code),
                "sealed": self.vault.seal(follow_up_code.encode(), bound_to=event_id),
            }
            if submission.complainant_contact is not None:
                record["contact_sealed"] = self.vault.seal(
                    submission.complainant_contact.model_dump_json().encode(), bound_to=event_id
                )
                derived["contact_on_file"] = True
        event = kind.event.accept(submission, received_at=now, **derived)
        record.update(
            {
                "_id": str(event.event_id),
                "event_type": kind.event_type,
                "source_system": submission.source_system,
                "event": event.model_dump(mode="json"),
            }
        )
        return _Item(submission, event, fingerprint, record, follow_up_code)

    def _open_follow_up_code(self, record: Document) -> str | None:
        follow_up = record.get("follow_up")
        if follow_up is None:
            return None
        return self.vault.open(follow_up["sealed"], bound_to=record["_id"]).decode()

    async def _publish(self, items: list[_Item], *, now: datetime) -> set[UUID]:
        """Publish concurrently; return the ids Kafka acknowledged, and mark those published."""
        if items and not await self.kafka_reachable():
            logger.warning("Kafka unreachable: %d events not published", len(items))
            return set()
        for item in items:
            if item.follow_up_code is not None:
                await self.store.open_follow_up(
                    code_digest=token_digest(item.follow_up_code),
                    event_id=str(item.event.event_id),
                    at=now,
                )
        outcomes = await asyncio.gather(
            *(self.publish(item.event) for item in items), return_exceptions=True
        )
        published: set[UUID] = set()
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning(
                    "publishing %s failed: %s", item.event.event_id, type(outcome).__name__
                )
            else:
                published.add(item.event.event_id)
        await self.store.mark_published([str(event_id) for event_id in published], at=now)
        return published
