"""The notifier's application layer: decisions and cases in, notifications recorded in the
outbox, sent, retried, acknowledged and followed up. On the store adapter, so it runs on
MongoDB, FerretDB and the in-memory twin alike.

A notification is recorded before anything is sent (revision 1 of its document, first writer
wins), so a decision handled twice, or by a notifier killed before it committed, finds its
notifications and records none anew; the sender sends what is recorded and still pending, as
often as it takes (the same id every time), and a notification whose channels keep refusing it
is marked failed after the configured attempts.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta

from schemas.acknowledgement import NotificationAcknowledged
from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseState, CaseUpdated
from schemas.decision import Decision
from schemas.notification import NotificationUpdated
from services.common.addressees import Addressee, AddresseeDirectory
from services.common.departments import DepartmentCatalogue
from services.common.documents import Versioned
from services.notifier import domain
from services.notifier.domain import CaseFacts, Known, Notification, Purpose, Status
from services.notifier.metrics import NotifierMetrics
from services.notifier.store import NotifierStore, StaffDepartment

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Deliver = Callable[[Notification, Addressee, str, datetime], Awaitable[None]]
ChannelsOf = Callable[[Addressee], list[str]]
AnnounceStates = Callable[[Sequence[NotificationUpdated]], Awaitable[None]]


@dataclass(frozen=True)
class Sending:
    max_attempts: int
    first_pause: float
    longest_pause: float
    claim_seconds: float = 60.0
    """How long a sender holds a notification it is sending (longer than a send may take)."""
    at_once: int = 8
    """Notifications sent side by side."""


@dataclass(eq=False)
class Notifier:
    store: NotifierStore
    directory: AddresseeDirectory
    catalogue: DepartmentCatalogue
    _: KW_ONLY
    desk_url: str
    clock: Clock
    deliver: Deliver
    channels_of: ChannelsOf
    sending: Sending
    metrics: NotifierMetrics
    publish: AnnounceStates
    decided_from: datetime | None = None
    """Decisions made before this are not notified (a notifier added to a running system
    reads the decisions topic from its start)."""

    # --- recording ----------------------------------------------------------------------------

    async def take_decisions(self, decisions: Sequence[Decision]) -> None:
        """Record the notifications of each decision; one about a case not seen yet waits."""
        if self.decided_from is not None:
            decisions = [d for d in decisions if d.decided_at >= self.decided_from]
        case_ids = {d.case_id for d in decisions if d.case_id is not None}
        staff_ids = {d.subject_id for d in decisions}
        cases = await self.store.cases.get_many(case_ids)
        staff = await self.store.staff.get_many(staff_ids)
        waiting: dict[str, Decision] = {}
        made: list[Notification] = []
        for decision in decisions:
            case = cases.get(decision.case_id) if decision.case_id else None
            if case is None and domain.needs_case(decision, self.directory):
                waiting[str(decision.event_id)] = decision
                continue
            member = staff.get(decision.subject_id)
            known = Known(case=case, staff_department=member.department if member else None)
            made += domain.decision_notifications(
                decision,
                known,
                self.directory,
                self.catalogue,
                desk_url=self.desk_url,
                now=self.clock(),
            )
        if waiting:
            await self.store.waiting.insert_many(waiting)
        await self.record(made)

    async def record(self, notifications: Sequence[Notification]) -> None:
        """First writer wins: a notification recorded before is left as it is."""
        saved = await asyncio.gather(
            *(self.store.outbox.save(str(n.notification_id), n, over=0) for n in notifications)
        )
        for notification, new in zip(notifications, saved, strict=False):
            if new:
                self.metrics.recorded.labels(notification.send_key, notification.purpose).inc()

    async def take_cases(self, cases: Sequence[CaseUpdated]) -> None:
        """Keep each case's latest facts and its accused's department; then the decisions that
        waited for these cases."""
        latest: dict[str, CaseUpdated] = {}
        for case in cases:
            if case.case_id not in latest or latest[case.case_id].revision < case.revision:
                latest[case.case_id] = case
        kept = await self.store.cases.get_many(latest)
        newer = {
            case_id: facts_of(case)
            for case_id, case in latest.items()
            if case_id not in kept or kept[case_id].revision < case.revision
        }
        await self.store.cases.put_many(newer)
        await self.store.staff.put_many(
            {
                facts.accused_staff_id: StaffDepartment(
                    staff_id=facts.accused_staff_id, department=facts.concerned_department
                )
                for facts in newer.values()
                if facts.accused_staff_id and facts.concerned_department
            }
        )
        for case_id in latest:
            waited = await self.store.waiting.find(case_id=case_id)
            if waited:
                await self.take_decisions(list(waited.values()))
                for decision_id in waited:
                    await self.store.waiting.delete(decision_id)

    # --- sending ------------------------------------------------------------------------------

    async def send_due(self) -> None:
        """Send every pending notification whose time has come (a round of the sender).

        Each is claimed first, saved over the revision read with ``claimed_until`` set: of two
        instances (or two rounds) only one sends it; a claim of a sender killed mid-send runs
        out after ``claim_seconds``, and the notification is sent again, with the same id."""
        now = self.clock()
        pending = await self.store.outbox.find(status=Status.PENDING)
        due = [
            (found.key, found.revision, found.value)
            for found in pending.values()
            if found.value is not None
            and found.value.next_attempt_at <= now
            and (found.value.claimed_until is None or found.value.claimed_until <= now)
        ]
        gate = asyncio.Semaphore(self.sending.at_once)
        claim = timedelta(seconds=self.sending.claim_seconds)

        async def one(key: str, revision: int, notification: Notification) -> None:
            claimed = notification.model_copy(update={"claimed_until": now + claim})
            if not await self.store.outbox.save(key, claimed, over=revision):
                return  # another sender, or an acknowledgement, came first: next round
            async with gate:
                delivered = await self._attempt(claimed)
            await self.store.outbox.update(key, self._after_attempt(delivered))

        await asyncio.gather(*(one(*found) for found in due))

    async def _attempt(self, notification: Notification) -> tuple[str, ...]:
        """Send ``notification`` by each of its channels that has not taken it yet; the
        channels that have taken it now."""
        now = self.clock()
        addressee = self.directory.by_key(notification.addressee, self.catalogue)
        delivered = list(notification.delivered)
        for channel in self.channels_of(addressee):
            if channel in delivered:
                continue
            kind = channel.split(":", 1)[0]
            try:
                await self.deliver(notification, addressee, channel, now)
            except Exception as error:  # any refusal: tried again later, counted, logged
                self.metrics.attempts_failed.labels(kind).inc()
                logger.warning(
                    "notification %s not taken by %s (%s)",
                    notification.notification_id,
                    kind,
                    type(error).__name__,
                )
            else:
                delivered.append(channel)
                self.metrics.sent.labels(kind).inc()
        return tuple(delivered)

    def _after_attempt(
        self, delivered: tuple[str, ...]
    ) -> Callable[[Versioned[Notification]], Awaitable[Notification | None]]:
        """The attempt's outcome, on the notification as it now stands."""

        async def change(current: Versioned[Notification]) -> Notification | None:
            notification = current.value
            if notification is None or notification.status is not Status.PENDING:
                return None
            return self._attempted(notification, delivered)

        return change

    def _attempted(self, notification: Notification, delivered: tuple[str, ...]) -> Notification:
        now = self.clock()
        notification = notification.model_copy(update={"claimed_until": None})
        attempts = notification.attempts + 1
        addressee = self.directory.by_key(notification.addressee, self.catalogue)
        delivered = tuple(dict.fromkeys((*notification.delivered, *delivered)))
        tried = {"attempts": attempts, "delivered": delivered}
        if set(self.channels_of(addressee)) <= set(delivered):
            return notification.model_copy(
                update=tried
                | {
                    "status": Status.SENT,
                    "sent_at": now,
                    "announced": False,
                    "awaiting_ack": notification.asks_for_ack
                    and notification.purpose is Purpose.DECISION
                    and notification.acknowledged_at is None,
                }
            )
        if attempts >= self.sending.max_attempts:
            self.metrics.failed.labels(notification.send_key).inc()
            logger.error(
                "notification %s failed %d times; given up", notification.notification_id, attempts
            )
            return notification.model_copy(
                update=tried | {"status": Status.FAILED, "announced": False}
            )
        retry = domain.retry_at(
            attempts,
            now,
            first_pause=self.sending.first_pause,
            longest_pause=self.sending.longest_pause,
        )
        return notification.model_copy(update=tried | {"next_attempt_at": retry})

    # --- publishing what became of each notification ---------------------------------------

    async def announce(self) -> None:
        """AnnounceStates the state of each notification not published since it changed (recorded,
        sent, failed), then mark it published: at least once, as a round of its own, so the
        broker down delays no email. The desk shows them beside their acknowledgements."""
        found = await self.store.outbox.find(announced=False)
        unannounced = [(key, kept.value) for key, kept in found.items() if kept.value is not None]
        if not unannounced:
            return
        now = self.clock()
        await self.publish(
            [
                domain.update_of(n, self.directory.by_key(n.addressee, self.catalogue).name_zh, now)
                for _, n in unannounced
            ]
        )
        gate = asyncio.Semaphore(self.sending.at_once)

        async def mark(key: str, status: Status) -> None:
            async with gate:
                await self.store.outbox.update(key, _announced(status))

        await asyncio.gather(*(mark(key, n.status) for key, n in unannounced))

    # --- acknowledgements and follow-ups ------------------------------------------------------

    async def take_acknowledgements(self, acks: Sequence[NotificationAcknowledged]) -> None:
        """Acknowledgements made on the desk: no more reminders."""
        for ack in acks:
            first: list[Notification] = []
            await self.store.outbox.update(str(ack.notification_id), _acknowledged(ack, first))
            for notification in first[-1:]:
                self.metrics.acknowledged.labels(notification.send_key).inc()

    async def follow_up(self) -> None:
        """Remind whoever has not acknowledged in time, then tell their superior; export how
        many urgent notifications wait past their deadline."""
        now = self.clock()
        awaiting = await self.store.outbox.find(awaiting_ack=True)
        waiting = [found.value for found in awaiting.values() if found.value is not None]
        for sent in waiting:
            due = domain.follow_ups(sent, self.directory, self.catalogue, now=now)
            if not due:
                continue
            await self.record(due)
            await self.store.outbox.update(
                str(sent.notification_id), _followed_up(tuple(n.purpose for n in due))
            )
        for urgent in (True, False):
            self.metrics.overdue.labels(str(urgent).lower()).set(
                domain.overdue_unacknowledged([n for n in waiting if n.urgent is urgent], now)
            )
        await self.inform(waiting, now)

    async def inform(self, unacknowledged: Sequence[Notification], now: datetime) -> None:
        """Each head's digest of the day once its hour has come, and on the configured day the
        monthly report's reminder; each recorded once, whoever records it first (what is
        recorded already is looked up by id: a round after that costs one read)."""
        settings = self.directory.digest
        local = now.astimezone(HOSPITAL_TIME_ZONE)
        if not settings.enabled or local.hour < settings.hour:
            return
        heads = {
            code: self.directory.head(code, self.catalogue) for code in self.catalogue.departments
        }
        today = domain.hospital_day_key(now)
        ids = {
            code: str(domain.informing_id(Purpose.DIGEST, h, today)) for code, h in heads.items()
        }
        recorded = await self.store.outbox.load_many(ids.values())
        made: list[Notification] = []
        for department, head in heads.items():
            if recorded[ids[department]].value is not None:
                continue
            open_cases = await self.store.cases.find(
                responsible_department=department, awaiting_finding=True
            )
            waiting = sum(1 for n in unacknowledged if n.addressee == head.key)
            made.append(
                domain.digest(
                    department,
                    head,
                    list(open_cases.values()),
                    waiting,
                    desk_url=self.desk_url,
                    now=now,
                )
            )
            if local.day == settings.monthly_report_reminder_day:
                made.append(domain.monthly_report_reminder(department, head, now=now))
        await self.record(made)


def facts_of(case: CaseUpdated) -> CaseFacts:
    return CaseFacts(
        case_id=case.case_id,
        revision=case.revision,
        responsible_department=case.responsible_department.code,
        concerned_department=case.concerned_department,
        accused_staff_id=case.accused_staff_id,
        awaiting_finding=case.state in AWAITING_FINDING,
        deadline=case.deadline,
    )


AWAITING_FINDING = (CaseState.OPENED, CaseState.ASSIGNED, CaseState.INVESTIGATING)


def _acknowledged(
    ack: NotificationAcknowledged, made: list[Notification]
) -> Callable[[Versioned[Notification]], Awaitable[Notification | None]]:
    """Record the first acknowledgement (``made`` gets what was saved, to count it once)."""

    async def change(current: Versioned[Notification]) -> Notification | None:
        if current.value is None or current.value.acknowledged_at is not None:
            return None
        acknowledged = current.value.model_copy(
            update={
                "awaiting_ack": False,
                "acknowledged_at": ack.acknowledged_at,
                "acknowledged_by": ack.acknowledged_by,
            }
        )
        made.append(acknowledged)
        return acknowledged

    return change


def _announced(
    status: Status,
) -> Callable[[Versioned[Notification]], Awaitable[Notification | None]]:
    """Published in ``status``; a notification changed since stays to publish."""

    async def change(current: Versioned[Notification]) -> Notification | None:
        notification = current.value
        if notification is None or notification.announced or notification.status is not status:
            return None
        return notification.model_copy(update={"announced": True})

    return change


def _followed_up(
    purposes: tuple[Purpose, ...],
) -> Callable[[Versioned[Notification]], Awaitable[Notification | None]]:
    async def change(current: Versioned[Notification]) -> Notification | None:
        if current.value is None:
            return None
        recorded = current.value.followed_up
        added = tuple(p for p in purposes if p not in recorded)
        return (
            current.value.model_copy(update={"followed_up": (*recorded, *added)}) if added else None
        )

    return change
