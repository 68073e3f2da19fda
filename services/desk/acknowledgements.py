"""``/ack/{token}``: a person signed in to the desk acknowledges a notification (确认收到)
through the signed link the notifier sent (``services/common/acknowledge_links.py``).

The link opens a page that asks to confirm (a mail scanner opening the link acknowledges
nothing); the confirmation, with the form's CSRF token, publishes the acknowledgement on
``qinglian.acknowledgements.v1`` and records it, once per notification: a link used again is
answered as already acknowledged. Only someone the notification (or a follow-up of it) was
addressed to may acknowledge it (``access.answers_for``), never a person it concerns; the
acknowledgement names who did, and for whom.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import Response
from faststream.kafka.publisher import DefaultPublisher

from schemas.acknowledgement import NotificationAcknowledged
from schemas.base import derive_event_id
from services.common.acknowledge_links import LinkRefusedError, verify
from services.common.addressees import AddresseeDirectory
from services.common.documents import Records
from services.common.service import Clock, wired
from services.desk.access import Viewer, answers_for
from services.desk.notifications import Notifications
from services.desk.web import PageError, SignedDep, check_csrf, page

NOT_YOURS = "此通知不是发给您的，不能由您确认 / this notification was not addressed to you"
NOT_YET = (
    "案件台尚未收到此通知，请稍后再试 / the desk has not heard of this notification yet: "
    "try again in a minute"
)


@dataclass
class Acknowledging:
    records: Records[NotificationAcknowledged]
    notifications: Notifications
    directory: AddresseeDirectory
    publisher: DefaultPublisher
    key: bytes
    clock: Clock

    def notification(self, token: str) -> uuid.UUID:
        try:
            return verify(token, self.key, now=self.clock())
        except LinkRefusedError as refused:
            raise PageError(status.HTTP_404_NOT_FOUND, str(refused)) from None

    async def answering_for(self, notification_id: uuid.UUID, viewer: Viewer) -> str:
        """The addressee ``viewer`` acknowledges for; refused (403) when none is theirs or the
        notification concerns them, 409 while the desk has not heard of it."""
        addressed = await self.notifications.addressed(notification_id)
        if addressed is None:
            raise PageError(status.HTTP_409_CONFLICT, NOT_YET)
        if viewer.staff_id is not None and viewer.staff_id in addressed.accused:
            raise PageError(status.HTTP_403_FORBIDDEN, NOT_YOURS)
        for addressee in addressed.addressees:
            if answers_for(viewer, addressee, self.directory):
                return addressee
        raise PageError(status.HTTP_403_FORBIDDEN, NOT_YOURS)

    async def acknowledge(
        self, notification_id: uuid.UUID, signed: SignedDep, addressee: str
    ) -> datetime | None:
        """Publish and record the acknowledgement; None if it was acknowledged already (when)."""
        before = await self.records.get(str(notification_id))
        if before is not None:
            return before.acknowledged_at
        ack = NotificationAcknowledged(
            event_id=derive_event_id("desk", f"ack:{notification_id}"),
            notification_id=notification_id,
            acknowledged_by=signed.account.username,
            acknowledged_by_staff_id=signed.account.staff_id,
            acknowledged_by_name=signed.account.display_name,
            acknowledged_for=addressee,
            acknowledged_at=self.clock(),
        )
        # Published first: a crash before the record is kept publishes it again (the notifier
        # and the desk's read model keep the first).
        await self.publisher.publish(ack, key=notification_id.bytes)
        await self.records.insert(str(notification_id), ack)
        return None


acknowledging = wired(Acknowledging, "acknowledging")


AcknowledgingDep = Annotated[Acknowledging, Depends(acknowledging)]
ack_pages = APIRouter(include_in_schema=False)


@ack_pages.get("/ack/{token}")
async def acknowledge_page(
    request: Request, signed: SignedDep, acks: AcknowledgingDep, token: str
) -> Response:
    await acks.answering_for(acks.notification(token), signed.viewer)
    return page(request, "acknowledge.html", {"signed": signed, "token": token, "done": None})


@ack_pages.post("/ack/{token}")
async def acknowledge(
    request: Request, signed: SignedDep, acks: AcknowledgingDep, token: str
) -> Response:
    check_csrf(await request.form(), signed.session.csrf_token)
    notification_id = acks.notification(token)
    addressee = await acks.answering_for(notification_id, signed.viewer)
    before = await acks.acknowledge(notification_id, signed, addressee)
    done = "已确认收到 / acknowledged" if before is None else "此前已确认 / acknowledged before"
    return page(request, "acknowledge.html", {"signed": signed, "token": token, "done": done})
