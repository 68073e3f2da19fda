"""Notifications and their acknowledgements as the desk shows them: on a case's page (通知与
确认: who was told, when, where it stands, who acknowledged and when) and in the register
(``/notifications``: what is not acknowledged yet first). Read from the desk's read model of
``qinglian.notifications.v1`` and ``qinglian.acknowledgements.v1``; the addressee is a role or
group by name, never an address.

Who sees a notification is ``access.Rules.may_see_notification``: never one about oneself, one
about a case as the case. Who may acknowledge one is ``access.answers_for``: an addressee of it
or of a follow-up of it (the reminder's, the superior's).
"""

import asyncio
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.acknowledgement import NotificationAcknowledged
from schemas.notification import NotificationStatus, NotificationUpdated
from services.desk.access import Rules, Viewer
from services.desk.readmodel import CaseIndex
from services.desk.store import DeskStore

State = Literal["unacknowledged", "failed", "pending", "acknowledged", "informing"]
STATES: dict[State, str] = {
    "unacknowledged": "已发送，未确认 Sent, not acknowledged",
    "failed": "发送失败 Failed",
    "pending": "待发送 Sending",
    "acknowledged": "已确认 Acknowledged",
    "informing": "已发送（无需确认） Sent, no acknowledgement asked",
}
"""Each state with its label, in the register's order: what still needs someone first."""
PURPOSES = {
    "decision": "决定通知",
    "reminder": "提醒",
    "superior": "督办",
    "digest": "每日提示",
    "monthly_report": "月报提醒",
}
MARKERS = {"new": "", "correction": "【更正】", "withdrawal": "【撤销】"}


@dataclass(frozen=True)
class Entry:
    """One notification with its acknowledgement (a follow-up's: that of what it recalls)."""

    notification: NotificationUpdated
    ack: NotificationAcknowledged | None

    @property
    def state(self) -> State:
        if self.ack is not None:
            return "acknowledged"
        status = self.notification.status
        if status is NotificationStatus.FAILED:
            return "failed"
        if status is NotificationStatus.PENDING:
            return "pending"
        return "unacknowledged" if self.notification.asks_for_ack else "informing"

    @property
    def state_zh(self) -> str:
        return STATES[self.state]

    @property
    def what_zh(self) -> str:
        n = self.notification
        return f"{MARKERS[n.marker]}{PURPOSES[n.purpose]}"

    @property
    def acknowledged_by(self) -> str:
        if self.ack is None:
            return ""
        who = self.ack.acknowledged_by_name or self.ack.acknowledged_by
        staff = self.ack.acknowledged_by_staff_id
        return f"{who}（{staff}）" if staff else who


def acknowledged_one(notification: NotificationUpdated) -> str:
    return str(notification.acknowledges or notification.notification_id)


def entries(
    notifications: Iterable[NotificationUpdated], acks: Mapping[str, NotificationAcknowledged]
) -> list[Entry]:
    """The notifications with their acknowledgements, what still needs someone first, then
    by deadline."""
    order = list(STATES)
    made = [Entry(n, acks.get(acknowledged_one(n))) for n in notifications]
    return sorted(
        made,
        key=lambda e: (
            order.index(e.state),
            e.notification.deadline,
            str(e.notification.notification_id),
        ),
    )


async def of_case(store: DeskStore, case_id: str) -> list[Entry]:
    """A case's notifications, for its page (whoever sees the case sees them)."""
    found = await store.notifications.find(case_id=case_id)
    acks = await store.acknowledgements.get_many({acknowledged_one(n) for n in found.values()})
    return entries(found.values(), acks)


@dataclass(frozen=True)
class Addressed:
    """Whom a notification and its follow-ups went to, and whom they concern."""

    addressees: tuple[str, ...]
    accused: tuple[str, ...]


class Notifications:
    def __init__(self, store: DeskStore, index: CaseIndex, rules: Rules) -> None:
        self.store = store
        self.index = index
        self.rules = rules

    async def register(self, viewer: Viewer, state: str = "") -> list[Entry]:
        """The notifications ``viewer`` may see, in one ``state`` or all. Failed and pending
        ones are found by their status (an equality FerretDB serves from an index); the rest
        is a read of the whole collection (FerretDB pushes down no range, ``$in`` or sort):
        a page for a few people, not a hot path (5,000 kept: about 2 s on FerretDB 1.24)."""
        if state in (NotificationStatus.FAILED, NotificationStatus.PENDING):
            found = await self.store.notifications.find(status=NotificationStatus(state))
            acks = await self.store.acknowledgements.get_many(
                {acknowledged_one(n) for n in found.values()}
            )
        else:
            found = await self.store.notifications.find()
            acks = await self.store.acknowledgements.find()
        visible = [
            n
            for n in found.values()
            if self.rules.may_see_notification(
                viewer, n.accused, self.index.rows.get(n.case_id) if n.case_id else None
            )
        ]
        listed = entries(visible, acks)
        return [e for e in listed if e.state == state] if state else listed

    async def addressed(self, notification_id: uuid.UUID) -> Addressed | None:
        """Whom the notification (the one an acknowledge link names) and its follow-ups were
        sent to; None while the desk has not heard of it."""
        original, follow_ups = await asyncio.gather(
            self.store.notifications.get(str(notification_id)),
            self.store.notifications.find(acknowledges=notification_id),
        )
        if original is None:
            return None
        told = [original, *follow_ups.values()]
        return Addressed(
            addressees=tuple(dict.fromkeys(n.addressee for n in told)),
            accused=tuple(sorted({a for n in told for a in n.accused})),
        )
