"""Escalation's application layer: files events in the conduct files they concern, applies the
rules to each whole file again, publishes what changed and saves the file, safely under
redelivery, replay, late events and concurrent writers (handlers of other topics, the
periodic check, other instances).

A batch is handled file by file, all of a file's events at once: the files are loaded in one
wave, each is decided again once, the decisions of all are published, then each file is
saved over the revision it was loaded at.

Decisions are published before the file that records them is saved: after a crash in between,
the redelivered batch finds them unrecorded and publishes them again, with the same ids. When
a save loses to another writer, that file is loaded again and decided again on the other
writer's file, reconciled against what the other writer recorded and what this call already
published: a decision this call published that no longer holds is corrected, not forgotten,
and so is one the other writer published meanwhile on a key this call published too (which
of the two came last on the topic is unknown).
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from uuid import UUID

from schemas.base import Event
from schemas.case import CaseUpdated
from schemas.decision import Decision, SubjectKind
from schemas.lead import Lead
from services.common.documents import StoreBusyError, Versioned
from services.common.service import Clock
from services.escalation.conduct import ConductFile, FileEvent, reconcile, subjects_of
from services.escalation.rulebook import RuleBook
from services.escalation.rules import depends_on_clock, evaluate
from services.escalation.rules.leads import lead_of
from services.escalation.store import EscalationStore, KeptFile, Watched

ATTEMPTS = 20
"""Rounds of lost saves before a batch gives up (it is then retried record by record)."""

PublishDecisions = Callable[[Sequence[Decision]], Awaitable[None]]
"""Publishes escalation's decisions on the decisions topic, keyed by subject."""
PublishLeads = Callable[[Sequence[Lead]], Awaitable[None]]
"""Publishes leads on the leads topic, keyed by their source event."""
CasesAllRead = Callable[[], Awaitable[bool]]
"""Whether every case revision published so far is in the conduct files."""
Change = Callable[[ConductFile], ConductFile]


@dataclass(frozen=True)
class FileUpdate:
    """What to do to one conduct file: apply ``change``, decide as of ``now``."""

    blank: ConductFile
    """The subject's file before anything is known of it."""
    change: Change
    now: datetime


@dataclass(frozen=True)
class Decided:
    """One file decided again: what to publish, what to keep, whether the clock matters."""

    key: str
    revision: int
    kept: KeptFile
    changed: bool
    published: list[Decision]
    watched: bool


@dataclass
class Sent:
    """What one call published on a file, over all its attempts, and the decisions it found
    recorded in the file when it loaded it."""

    published: dict[str, list[Decision]] = field(default_factory=dict)
    """By key, in the order published."""
    seen: set[UUID] = field(default_factory=set)

    def add(self, published: Sequence[Decision], *, recorded: KeptFile | None) -> None:
        for decision in published:
            self.published.setdefault(decision.key, []).append(decision)
        self.seen |= {decision.event_id for decision in recorded.published} if recorded else set()

    def latest(self) -> dict[str, Decision]:
        return {key: decisions[-1] for key, decisions in self.published.items()}

    def all(self) -> list[Decision]:
        return [decision for decisions in self.published.values() for decision in decisions]

    def racing(self, recorded: Mapping[str, Decision]) -> dict[str, Decision]:
        """Recorded decisions another writer published on keys this call published too,
        after this call loaded the file: either may be the last on the topic."""
        return {
            key: decision
            for key, decision in recorded.items()
            if key in self.published
            and decision.event_id not in self.seen
            and decision.event_id != self.published[key][-1].event_id
        }


def decide_again(
    update: FileUpdate, loaded: Versioned[KeptFile], sent: Sent, book: RuleBook
) -> Decided:
    """Apply the update to the file as loaded and decide on the whole file again, against
    what the file records and what this call already published (``sent``: also by attempts
    whose save lost to another writer, whose decisions are corrected where they differ)."""
    stored = loaded.value or KeptFile(file=update.blank)
    file = update.change(stored.file)
    fresh = evaluate(file, book, now=update.now)
    recorded = stored.by_key()
    emitted = {**recorded, **sent.latest()}
    published = reconcile(emitted, fresh, now=update.now)
    # What another writer published on a key this call published too may be the last word
    # on the topic: it is corrected as well where it no longer holds.
    answered = {decision.key for decision in published}
    racing = {key: d for key, d in sent.racing(recorded).items() if key not in answered}
    published += reconcile(racing, [d for d in fresh if d.key in racing], now=update.now)
    emitted |= {decision.key: decision for decision in published}
    return Decided(
        key=update.blank.key,
        revision=loaded.revision,
        kept=KeptFile(file=file, published=tuple(emitted.values())),
        changed=file != stored.file or emitted != stored.by_key(),
        published=published,
        watched=depends_on_clock(file, fresh),
    )


def with_events(events: Sequence[FileEvent]) -> Change:
    """Add the events the file does not hold yet (by event id: a redelivery adds nothing)."""

    def change(file: ConductFile) -> ConductFile:
        known = {event.event_id for event in file.events}
        new = {event.event_id: event for event in events if event.event_id not in known}
        return file.model_copy(update={"events": (*file.events, *new.values())}) if new else file

    return change


def with_case(case: CaseUpdated) -> Change:
    """Keep the case's latest revision."""

    def change(file: ConductFile) -> ConductFile:
        if file.case is not None and file.case.revision >= case.revision:
            return file
        return file.model_copy(update={"case": case})

    return change


def unchanged(file: ConductFile) -> ConductFile:
    return file


@dataclass
class Escalation:
    store: EscalationStore
    book: RuleBook
    _: KW_ONLY
    clock: Clock
    publish_decisions: PublishDecisions
    publish_leads: PublishLeads
    cases_all_read: CasesAllRead

    async def file_events(self, events: Iterable[FileEvent]) -> list[Decision]:
        """Each event into the files of the subjects it concerns; one update per file."""
        by_file: dict[str, tuple[ConductFile, list[FileEvent]]] = {}
        for event in events:
            for blank in subjects_of(event):
                by_file.setdefault(blank.key, (blank, []))[1].append(event)
        now = self.clock()
        return await self.update(
            [FileUpdate(blank, with_events(held), now) for blank, held in by_file.values()]
        )

    async def file_cases(self, cases: Iterable[CaseUpdated]) -> list[Decision]:
        """Each case's latest revision into its file."""
        latest: dict[str, CaseUpdated] = {}
        for case in cases:
            if case.case_id not in latest or latest[case.case_id].revision < case.revision:
                latest[case.case_id] = case
        now = self.clock()
        # A revision tells the case as it stood when it was made: judged later (a replay, a
        # lag), it would look overdue though its finding came in time in the next revision.
        # The periodic check judges the latest revision by the clock.
        return await self.update(
            [
                FileUpdate(ConductFile.of_case(case), with_case(case), min(now, case.updated_at))
                for case in latest.values()
            ]
        )

    async def raise_leads(self, events: Iterable[Event]) -> list[Lead]:
        """The leads the events make, kept, then published (on every delivery: the router is
        idempotent on the source event)."""
        leads = [lead for event in events if (lead := lead_of(event, self.book)) is not None]
        await self.store.leads.insert_many({str(lead.event_id): lead for lead in leads})
        await self.publish_leads(leads)
        return leads

    async def raise_leads_and_file(self, events: Sequence[FileEvent]) -> list[Decision]:
        """Leads first (a late surrender, a visit against the rules, a failed
        rectification), then into the files the events concern."""
        await self.raise_leads(events)
        return await self.file_events(events)

    async def recheck_watched(self) -> None:
        """Decide again on every file whose decisions depend on the clock. A case waits while
        any case revision is unread: the next one (a lag, a replay) may record a finding made
        in time, and judged by today's clock the case would look overdue."""
        now = self.clock()
        judged = [subject.blank() for subject in (await self.store.watched.find()).values()]
        if not await self.cases_all_read():
            judged = [blank for blank in judged if blank.subject_kind is not SubjectKind.CASE]
        await self.update([FileUpdate(blank, unchanged, now) for blank in judged])

    async def update(self, updates: Sequence[FileUpdate]) -> list[Decision]:
        """Apply each update to its file, publish what changed, save; again for the files
        another writer saved first. What was published, corrections included."""
        pending = {update.blank.key: update for update in updates}
        sent = {key: Sent() for key in pending}
        for _ in range(ATTEMPTS):
            pending = await self._attempt(pending, sent)
            if not pending:
                return [decision for by_file in sent.values() for decision in by_file.all()]
        raise StoreBusyError(f"conduct files kept changing: {', '.join(sorted(pending)[:5])}")

    async def _attempt(
        self, pending: dict[str, FileUpdate], sent: dict[str, Sent]
    ) -> dict[str, FileUpdate]:
        """Load, decide, publish, save each pending file once; those another writer saved
        first."""
        loaded = await self.store.files.load_many(pending)
        decided = [
            decide_again(update, loaded[key], sent[key], self.book)
            for key, update in pending.items()
        ]
        await self.publish_decisions([d for step in decided for d in step.published])
        for step in decided:
            sent[step.key].add(step.published, recorded=loaded[step.key].value)
        saved = await asyncio.gather(*(self._save(step) for step in decided))
        await self._watch([step for step, done in zip(decided, saved, strict=True) if done])
        return {
            step.key: pending[step.key]
            for step, done in zip(decided, saved, strict=True)
            if not done
        }

    async def _save(self, step: Decided) -> bool:
        """Save a changed file over the revision it was decided on; False if another writer
        saved first. An unchanged one (a redelivery, a check that found nothing new) gets no
        new revision."""
        if not step.changed:
            return True
        return await self.store.files.save(step.key, step.kept, over=step.revision)

    async def _watch(self, decided: Sequence[Decided]) -> None:
        """Put on the watch list the files whose decisions depend on the clock, take off the
        others; also for unchanged files, in case a crash missed it."""
        current = await self.store.watched.get_many(step.key for step in decided)
        start = [s for s in decided if s.watched and s.key not in current]
        stop = [s for s in decided if not s.watched and s.key in current]
        # Inserted, one by one: a subject's entry is the same whoever writes it, and two
        # writers may start watching one subject at once (FerretDB 1.24 refuses the second of
        # two concurrent upserts of an id, and answers a bulk replace without the count
        # PyMongo reads, so neither ``put`` nor ``put_many`` serves here).
        await asyncio.gather(
            *(self.store.watched.insert(s.key, Watched.of(s.kept.file)) for s in start),
            *(self.store.watched.delete(s.key) for s in stop),
        )
