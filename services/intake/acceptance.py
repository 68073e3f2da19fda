"""Accepting submissions: the one path HTTP (single and batch) and the raw topics share.

Submissions come as a list (one request, or one batch of raw records) and are handled in one
wave: each is checked and given its event id, then
- all are recorded at once (``insert_many`` tells which were new), and those recorded before
  are read at once: the same fingerprint is a ``duplicate`` (published again only if no mark
  says Kafka acknowledged it: an earlier attempt stopped in between), another a ``conflict``;
- what is new is published at once, a complaint with its follow-up code's digest for the
  portal (never the code: that is in the answer alone), and what Kafka acknowledged is marked.

A submission is answered ``accepted`` only after Kafka acknowledged it (acks=all), and
``unavailable`` at once while Kafka cannot be reached: the idempotent producer never gives up on
a record it was handed, so one handed over during an outage would hold the answer until Kafka is
back (or be published after an answer that said nothing was accepted).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from pymongo.errors import PyMongoError

from schemas import topics
from schemas.base import Event, Submission, derive_event_id
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintSubmission
from schemas.dead_letter import Problem
from schemas.follow_up import FollowUpCodeIssued
from services.common.credentials import digest
from services.common.publishing import Publish
from services.intake.crypto import Vault, new_follow_up_code
from services.intake.domain import SubmissionStatus, canonical, judge_repeat, timing_problems
from services.intake.store import Accepted, IntakeStore, Published, SealedCode

logger = logging.getLogger(__name__)

Reachable = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Result:
    status: SubmissionStatus
    event_id: UUID | None = None
    follow_up_code: str | None = None
    """Complaints only: the reporter's key to follow the case; given to the sender alone."""
    problems: tuple[Problem, ...] = ()


@dataclass
class _Pending:
    """A submission on its way: what is stored, and what it is answered."""

    record: Accepted
    follow_up_code: str | None
    result: Result | None = None

    @property
    def event_id(self) -> UUID:
        return self.record.event.event_id


@dataclass(frozen=True)
class _Repeat:
    """The same source reference again within one call."""

    first: _Pending
    fingerprint: str


@dataclass(kw_only=True)
class Acceptance:
    store: IntakeStore
    vault: Vault
    publish: Publish
    kafka_reachable: Reachable
    future_tolerance: timedelta

    async def submit(self, submissions: Sequence[Submission], *, now: datetime) -> list[Result]:
        """One result per submission, in order."""
        claim = uuid4().hex
        pending: dict[str, _Pending] = {}
        entries = [self._entry(s, pending, claim=claim, now=now) for s in submissions]
        try:
            await self._record_and_publish(pending, claim=claim, now=now)
        except PyMongoError as error:  # the store is down or failing: nothing is accepted
            logger.warning("intake store unavailable: %s", type(error).__name__)
            for item in pending.values():
                item.result = Result(SubmissionStatus.UNAVAILABLE, item.event_id)
        return [_result_of(entry) for entry in entries]

    def _entry(
        self, submission: Submission, pending: dict[str, _Pending], *, claim: str, now: datetime
    ) -> "Result | _Pending | _Repeat":
        problems = timing_problems(submission, now=now, tolerance=self.future_tolerance)
        if problems:
            return Result(SubmissionStatus.INVALID, problems=tuple(problems))
        event_id = str(derive_event_id(submission.source_system, submission.source_ref))
        fingerprint = self.vault.fingerprint(canonical(submission))
        if event_id in pending:
            return _Repeat(pending[event_id], fingerprint)
        pending[event_id] = self._prepare(submission, fingerprint, claim=claim, now=now)
        return pending[event_id]

    def _prepare(
        self, submission: Submission, fingerprint: str, *, claim: str, now: datetime
    ) -> _Pending:
        kind = BY_TYPE[submission.event_type]  # type: ignore[attr-defined]
        if not isinstance(submission, ComplaintSubmission):
            event = kind.event.accept(submission, received_at=now)
            return _Pending(Accepted(event=event, fingerprint=fingerprint, claim=claim), None)
        event_id = str(derive_event_id(submission.source_system, submission.source_ref))
        code = new_follow_up_code()
        contact = submission.complainant_contact
        event = kind.event.accept(submission, received_at=now, contact_on_file=contact is not None)
        record = Accepted(
            event=event,
            fingerprint=fingerprint,
            claim=claim,
            follow_up=SealedCode(
                digest=digest(code), sealed=self.vault.seal(code.encode(), bound_to=event_id)
            ),
            contact_sealed=None
            if contact is None
            else self.vault.seal(contact.model_dump_json().encode(), bound_to=event_id),
        )
        return _Pending(record, code)

    async def _record_and_publish(
        self, pending: dict[str, _Pending], *, claim: str, now: datetime
    ) -> None:
        new = await self.store.accepted.insert_many({i: p.record for i, p in pending.items()})
        earlier = await self.store.accepted.get_many(set(pending) - new)
        # Its own records, stored by a try that lost its answer (the store blinked), are new.
        mine = {event_id for event_id, record in earlier.items() if record.claim == claim}
        to_publish = [pending[event_id] for event_id in new | mine]
        repeats = {i: (pending[i], record) for i, record in earlier.items() if i not in mine}
        to_publish += await self._judge_repeats(repeats)
        published = await self._publish(to_publish, now=now)
        for item in to_publish:
            if item.event_id not in published:
                item.result = Result(SubmissionStatus.UNAVAILABLE, item.event_id)
            elif item.result is None:
                item.result = Result(SubmissionStatus.ACCEPTED, item.event_id, item.follow_up_code)

    async def _judge_repeats(self, repeats: dict[str, tuple[_Pending, Accepted]]) -> list[_Pending]:
        """Answer each repeat of an earlier call; those never published are published again."""
        marked = await self.store.published.get_many(repeats)
        again = []
        for event_id, (item, earlier) in repeats.items():
            status = judge_repeat(
                stored_fingerprint=earlier.fingerprint, fingerprint=item.record.fingerprint
            )
            if status is SubmissionStatus.CONFLICT:
                item.result = Result(status, item.event_id)
                continue
            # The event as first received, with the follow-up code first given.
            item.record, item.follow_up_code = earlier, self._open_code(earlier)
            item.result = Result(status, item.event_id, item.follow_up_code)
            if event_id not in marked:
                again.append(item)  # an earlier attempt stopped before Kafka's ack
        return again

    def _open_code(self, record: Accepted) -> str | None:
        if record.follow_up is None:
            return None
        return self.vault.open(
            record.follow_up.sealed, bound_to=str(record.event.event_id)
        ).decode()

    async def _publish(self, items: list[_Pending], *, now: datetime) -> set[UUID]:
        """Publish at once; mark and return the ids Kafka acknowledged."""
        if not items:
            return set()
        if not await self.kafka_reachable():
            logger.warning("Kafka unreachable: %d events not published", len(items))
            return set()
        outcomes = await asyncio.gather(
            *(self._publish_one(item) for item in items), return_exceptions=True
        )
        published = set()
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning("publishing %s failed: %s", item.event_id, type(outcome).__name__)
            else:
                published.add(item.event_id)
        await self.store.published.insert_many({str(i): Published(at=now) for i in published})
        return published

    async def _publish_one(self, item: _Pending) -> None:
        event: Event = item.record.event
        kind = BY_TYPE[event.event_type]  # type: ignore[attr-defined]
        sending = [self.publish(event, kind.topic, kind.key(event))]
        if item.record.follow_up is not None:
            issued = FollowUpCodeIssued(
                complaint_event_id=event.event_id,
                code_digest=item.record.follow_up.digest,
                received_at=event.received_at,
            )
            sending.append(self.publish(issued, topics.FOLLOW_UP_CODES, event.event_id.bytes))
        await asyncio.gather(*sending)


def _result_of(entry: Result | _Pending | _Repeat) -> Result:
    if isinstance(entry, Result):
        return entry
    if isinstance(entry, _Repeat):
        first = _result_of(entry.first)
        status = judge_repeat(
            stored_fingerprint=entry.first.record.fingerprint, fingerprint=entry.fingerprint
        )
        if status is SubmissionStatus.CONFLICT:
            return Result(status, entry.first.event_id)
        if first.status in (SubmissionStatus.ACCEPTED, SubmissionStatus.DUPLICATE):
            return Result(status, entry.first.event_id, entry.first.follow_up_code)
        return first
    return entry.result or Result(SubmissionStatus.UNAVAILABLE, entry.event_id)
