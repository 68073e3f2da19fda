"""The reporters' follow-ups: what the portal learns from Kafka (the codes intake gave, the
cases, the office's replies), and what a reporter reads and adds with a code. Load → domain →
save → publish, on the store adapter; every write is idempotent, so a replay changes nothing.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from schemas import topics
from schemas.case import CaseUpdated
from schemas.follow_up import FollowUpCodeIssued, ReporterAddition, ReporterReply
from services.common.credentials import digest
from services.common.publishing import Publish
from services.portal.domain import (
    Added,
    CaseLink,
    CaseProgress,
    FollowUpPage,
    FollowUpView,
    KnownCode,
    Reply,
    follow_up_page,
    follow_up_view,
    latest_progress,
    newer,
)
from services.portal.store import PortalStore

Reachable = Callable[[], Awaitable[bool]]


class KafkaUnreachableError(ConnectionError):
    """Kafka did not answer: nothing was published."""


class FollowUps:
    def __init__(self, store: PortalStore, *, publish: Publish, kafka_reachable: Reachable) -> None:
        self.store = store
        self.publish = publish
        self.kafka_reachable = kafka_reachable

    # What Kafka tells ------------------------------------------------------------------------

    async def learn_codes(self, issued: Sequence[FollowUpCodeIssued]) -> None:
        """Know each follow-up code intake gave, by its digest."""
        await self.store.codes.insert_many(
            {
                code.code_digest: KnownCode(
                    complaint_event_id=code.complaint_event_id, received_at=code.received_at
                )
                for code in issued
            }
        )

    async def follow_cases(self, cases: Sequence[CaseUpdated]) -> None:
        """Keep each complaint case's highest revision. Two portals may write one case while
        a rebalance moves its partition; the new owner reads on from the last commit, so it
        writes the latest revision last."""
        latest = latest_progress(cases)
        changed = newer(latest, await self.store.cases.get_many(latest))
        # A complaint stays in the case it was opened or linked in: its first link stands.
        await self.store.links.insert_many(
            {
                str(event_id): CaseLink(case_id=case_id)
                for case_id, progress in changed.items()
                for event_id in progress.source_event_ids
            }
        )
        await self.store.cases.put_many(changed)

    async def keep_replies(self, replies: Sequence[ReporterReply]) -> None:
        """Keep the conduct office's replies, for the reporter of each case."""
        await self.store.replies.insert_many(
            {
                str(reply.event_id): Reply(
                    case_id=reply.case_id,
                    text=reply.text,
                    sent_at=reply.sent_at,
                    outcome=reply.shares_outcome,
                )
                for reply in replies
            }
        )

    # What a reporter asks ----------------------------------------------------------------------

    async def known(self, code: str) -> KnownCode | None:
        """The complaint a code was given with, or None."""
        return await self.store.codes.get(digest(code))

    async def view(self, known: KnownCode) -> FollowUpView:
        progress, replies = await self._progress_and_replies(known)
        return follow_up_view(known, progress, replies)

    async def page(self, known: KnownCode) -> FollowUpPage:
        """What the follow-up page shows: also what the reporter added, and the deadline."""
        (progress, replies), added = await asyncio.gather(
            self._progress_and_replies(known),
            self.store.additions.find(complaint_event_id=known.complaint_event_id),
        )
        return follow_up_page(known, progress, replies, added.values())

    async def _progress_and_replies(
        self, known: KnownCode
    ) -> tuple[CaseProgress | None, list[Reply]]:
        link = await self.store.links.get(str(known.complaint_event_id))
        if link is None:
            return None, []
        # Read side by side: the replies are read before it is known whether they are shown.
        progress, replies = await asyncio.gather(
            self.store.cases.get(link.case_id), self.store.replies.find(case_id=link.case_id)
        )
        if progress is None:
            return None, []
        if not await self._replied_to(known.complaint_event_id, progress):
            return progress, []
        return progress, list(replies.values())

    async def _replied_to(self, complaint: uuid.UUID, progress: CaseProgress) -> bool:
        """Whether ``complaint`` is the case's first complaint: the office replies to its
        reporter."""
        sources = progress.source_event_ids
        if complaint not in sources:
            return False
        for earlier in sources[: sources.index(complaint)]:
            if await self.store.codes.find(complaint_event_id=earlier):
                return False
        return True

    async def add_information(
        self, known: KnownCode, text: str, *, now: datetime, attachments: int = 0
    ) -> uuid.UUID:
        """Publish what the reporter added (the router records it on the case), and keep it
        for the reporter's page: kept first, and taken back when it could not be published,
        so the page never shows what the office will not get. Its event id: the files that
        come with it are sent to intake under it."""
        if not await self.kafka_reachable():
            raise KafkaUnreachableError("Kafka did not answer")
        addition = ReporterAddition(
            event_id=uuid.uuid4(),
            complaint_event_id=known.complaint_event_id,
            text=text,
            received_at=now,
        )
        kept = Added(
            complaint_event_id=known.complaint_event_id,
            text=addition.text,
            at=now,
            attachments=attachments,
        )
        await self.store.additions.insert(str(addition.event_id), kept)
        try:
            await self.publish(
                addition, topics.REPORTER_ADDITIONS, addition.complaint_event_id.bytes
            )
        except Exception:
            await self.store.additions.delete(str(addition.event_id))
            raise
        return addition.event_id
