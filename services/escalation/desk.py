"""Escalation's desk: adds each event to the conduct files it concerns, applies the rules to
the whole file again, and publishes what changed, safely under redelivery, replay, late events
and concurrent handlers.

Decisions are published before the file that records them is saved: after a crash in between,
the redelivered event finds them unrecorded and publishes them again, with the same event ids.
When the save loses to another writer, the next attempt decides on the other writer's file and
corrects what this one published, if it no longer holds.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime

from schemas.decision import Decision
from services.escalation.conduct import ConductFile, reconcile
from services.escalation.repository import ConductFiles
from services.escalation.rulebook import RuleBook
from services.escalation.rules import depends_on_clock, evaluate

ATTEMPTS = 20

Change = Callable[[ConductFile], ConductFile]
Publish = Callable[[Decision], Awaitable[None]]


class FileBusyError(RuntimeError):
    """The file kept changing under us; the event is retried later."""


class EscalationDesk:
    def __init__(self, files: ConductFiles, book: RuleBook, publish: Publish) -> None:
        self.files = files
        self.book = book
        self.publish = publish

    async def update(
        self, blank: ConductFile, change: Change, *, now: datetime, watched: bool = False
    ) -> list[Decision]:
        """Apply ``change`` to the subject's file, decide again, publish what changed.

        ``watched``: the file is known to be on the watch list (the periodic check)."""
        # Published by this call, also by attempts whose save lost to another writer: those
        # are out all the same, so they are what a later decision on their key corrects.
        sent: dict[str, Decision] = {}
        for _ in range(ATTEMPTS):
            stored = await self.files.load(blank)
            file = change(stored.file)
            fresh = evaluate(file, self.book, now=now)
            emitted = {**stored.emitted, **sent}
            published = reconcile(emitted, fresh, now=now)
            for decision in published:
                await self.publish(decision)
            sent |= {d.key: d for d in published}
            emitted |= {d.key: d for d in published}
            if file == stored.file and emitted == stored.emitted:
                # A redelivery, or a periodic check that changed nothing: no new revision
                # (each one is kept); the watch is set again in case a crash missed it.
                still_watched = depends_on_clock(file, fresh)
                if not (watched and still_watched):
                    await self.files.set_watched(file, still_watched)
                return list(sent.values())
            stored.file, stored.emitted = file, emitted
            if await self.files.save(stored):
                await self.files.set_watched(file, depends_on_clock(file, fresh))
                return list(sent.values())
        raise FileBusyError(f"conduct file {blank.key} kept changing")

    async def recheck_watched(self, *, now: datetime) -> list[Decision]:
        """Decide again on every file whose decisions depend on the clock."""
        published = []
        for watched in await self.files.watched():
            blank = ConductFile(
                subject_kind=watched["subject_kind"], subject_id=watched["subject_id"]
            )
            published += await self.update(blank, lambda file: file, now=now, watched=True)
        return published
