"""The desk's read model, built from the topics: each case at its highest revision, the
complaints (their text), findings, escalation's decisions, reporters' additions, the
replies sent, the notifier's notifications and their acknowledgements. And the case list's
rows in memory (``CaseIndex``), loaded from the store at start and kept current as cases
arrive, here or through another desk instance.
"""

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from schemas.acknowledgement import NotificationAcknowledged
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.notification import NotificationUpdated
from services.common.departments import DepartmentCatalogue
from services.common.documents import Versioned
from services.desk.access import CaseRow, row_of
from services.desk.store import DeskStore

INFORMING = frozenset({"digest", "monthly_report"})
"""Notifications that only inform (no acknowledgement asked, no case): not kept by the desk."""
SAVES_AT_ONCE = 8
"""Case saves side by side: FerretDB on PostgreSQL holds two of its pooled connections for each
update and waits forever for one it cannot get, so a batch of 500 saved all at once would stall
it (services/common/store.py, BULK_CHUNK)."""


def minute_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


class CaseIndex:
    """Every case's row, by case id; a row is replaced only by a higher revision.
    ``generation`` grows with every change, so what was computed from the rows can be kept
    until it does."""

    def __init__(self, catalogue: DepartmentCatalogue) -> None:
        self.catalogue = catalogue
        self.rows: dict[str, CaseRow] = {}
        self.generation = 0

    def take(self, rows: Iterable[CaseRow]) -> list[CaseRow]:
        """Keep the rows newer than those known; the ones kept."""
        kept = []
        for row in rows:
            known = self.rows.get(row.case_id)
            if known is None or known.revision < row.revision:
                self.rows[row.case_id] = row
                kept.append(row)
        self.generation += bool(kept)
        return kept

    def take_cases(self, cases: Iterable[CaseUpdated]) -> list[CaseRow]:
        return self.take(row_of(case, self.catalogue) for case in cases)


class ReadModel:
    def __init__(
        self, store: DeskStore, index: CaseIndex, *, clock: Callable[[], datetime]
    ) -> None:
        self.store = store
        self.index = index
        self.clock = clock
        self.saving = asyncio.Semaphore(SAVES_AT_ONCE)

    async def load_index(self) -> None:
        """Every case's row into the list (at start): one query of small documents."""
        self.index.take((await self.store.rows.find()).values())

    async def refresh_index(self) -> None:
        """Take in the rows stored in this minute and the one before (by any instance)."""
        now = self.clock()
        for minute in (now - timedelta(minutes=1), now):
            stored = await self.store.rows.find(stored_minute=minute_of(minute))
            self.index.take(stored.values())

    async def cases(self, cases: Iterable[CaseUpdated]) -> None:
        """Keep each case's highest revision, and its row: replays and redeliveries change
        nothing."""
        newest: dict[str, CaseUpdated] = {}
        for case in cases:
            if case.case_id not in newest or newest[case.case_id].revision < case.revision:
                newest[case.case_id] = case
        loaded = await self.store.cases.load_many(newest)
        kept = await asyncio.gather(
            *(self._keep(loaded[case_id], case) for case_id, case in newest.items())
        )
        minute = minute_of(self.clock())
        rows = [row_of(case, self.index.catalogue, stored_minute=minute) for case in kept]
        await self.store.rows.put_many({row.case_id: row for row in self.index.take(rows)})

    async def _keep(self, current: Versioned[CaseUpdated], case: CaseUpdated) -> CaseUpdated:
        if current.value is not None and current.value.revision >= case.revision:
            return current.value
        async with self.saving:
            if await self.store.cases.save(case.case_id, case, over=current.revision):
                return case

            async def newer(now: Versioned[CaseUpdated]) -> CaseUpdated | None:
                if now.value is not None and now.value.revision >= case.revision:
                    return None
                return case

            latest = await self.store.cases.update(case.case_id, newer)
        assert latest.value is not None  # noqa: S101 (update stored or found a case)
        return latest.value

    async def complaints(self, complaints: Iterable[ComplaintReceived]) -> None:
        """Keep each complaint as received: its description is what the case page shows."""
        await self.store.complaints.insert_many({str(c.event_id): c for c in complaints})

    async def findings(self, findings: Iterable[InvestigationFindingReceived]) -> None:
        """Keep each finding whole (the case's history has only its gist)."""
        await self.store.findings.insert_many({str(f.event_id): f for f in findings})

    async def decisions(self, decisions: Iterable[Decision]) -> None:
        """Keep escalation's decisions, for the pages of the cases they name."""
        await self.store.decisions.insert_many({str(d.event_id): d for d in decisions})

    async def additions(self, additions: Iterable[ReporterAddition]) -> None:
        """Keep what reporters added to their complaints."""
        await self.store.additions.insert_many({str(a.event_id): a for a in additions})

    async def replies(self, replies: Iterable[ReporterReply]) -> None:
        """Keep the replies sent to reporters."""
        await self.store.replies.insert_many({str(r.event_id): r for r in replies})

    async def notifications(self, updates: Iterable[NotificationUpdated]) -> None:
        """Keep each notification at its latest state: sent or failed replaces pending, never
        the other way (a redelivered record changes nothing). Not the heads' daily digests and
        report reminders: they ask no acknowledgement, concern no case, and would be nine in
        ten of what the register reads."""
        latest: dict[str, NotificationUpdated] = {}
        for update in updates:
            key = str(update.notification_id)
            if update.purpose in INFORMING:
                continue
            if key not in latest or latest[key].status.rank < update.status.rank:
                latest[key] = update
        new = await self.store.notifications.insert_many(latest)
        later = {key: update for key, update in latest.items() if key not in new}
        kept = await self.store.notifications.get_many(later)
        # Replacing is slower than inserting (chunks of 10 on FerretDB): only what moved on.
        await self.store.notifications.put_many(
            {
                key: update
                for key, update in later.items()
                if key in kept and kept[key].status.rank < update.status.rank
            }
        )

    async def acknowledgements(self, acks: Iterable[NotificationAcknowledged]) -> None:
        """The first acknowledgement of each notification (first writer wins)."""
        await self.store.acknowledgements.insert_many({str(a.notification_id): a for a in acks})
