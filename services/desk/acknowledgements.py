"""``/ack/{token}``: a person signed in to the desk acknowledges a notification (确认收到)
through the signed link the notifier sent (``services/common/acknowledge_links.py``).

The link opens a page that asks to confirm (a mail scanner opening the link acknowledges
nothing); the confirmation, with the form's CSRF token, publishes the acknowledgement on
``qinglian.acknowledgements.v1`` and records it, once per notification: a link used again is
answered as already acknowledged.
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
from services.common.documents import Documents, Records
from services.common.service import Clock
from services.desk.web import PageError, SignedDep, check_csrf, page


@dataclass
class Acknowledging:
    records: Records[NotificationAcknowledged]
    publisher: DefaultPublisher
    key: bytes
    clock: Clock

    @classmethod
    def on(
        cls, documents: Documents, publisher: DefaultPublisher, key: bytes, clock: Clock
    ) -> "Acknowledging":
        return cls(
            documents.records("desk_acknowledgements", NotificationAcknowledged),
            publisher,
            key,
            clock,
        )

    def notification(self, token: str) -> uuid.UUID:
        try:
            return verify(token, self.key, now=self.clock())
        except LinkRefusedError as refused:
            raise PageError(status.HTTP_404_NOT_FOUND, str(refused)) from None

    async def acknowledge(self, notification_id: uuid.UUID, signed: SignedDep) -> datetime | None:
        """Publish and record the acknowledgement; None if it was acknowledged already (when)."""
        before = await self.records.get(str(notification_id))
        if before is not None:
            return before.acknowledged_at
        ack = NotificationAcknowledged(
            event_id=derive_event_id("desk", f"ack:{notification_id}"),
            notification_id=notification_id,
            acknowledged_by=signed.account.username,
            acknowledged_by_staff_id=signed.account.staff_id,
            acknowledged_at=self.clock(),
        )
        # Published first: a crash before the record is kept publishes it again (the notifier
        # keeps the first).
        await self.publisher.publish(ack, key=str(notification_id).encode())
        await self.records.insert(str(notification_id), ack)
        return None


def acknowledging(request: Request) -> Acknowledging:
    found: Acknowledging = request.app.state.acknowledging
    return found


AcknowledgingDep = Annotated[Acknowledging, Depends(acknowledging)]
ack_pages = APIRouter(include_in_schema=False)


@ack_pages.get("/ack/{token}")
async def acknowledge_page(
    request: Request, signed: SignedDep, acks: AcknowledgingDep, token: str
) -> Response:
    acks.notification(token)
    return page(request, "acknowledge.html", {"signed": signed, "token": token, "done": None})


@ack_pages.post("/ack/{token}")
async def acknowledge(
    request: Request, signed: SignedDep, acks: AcknowledgingDep, token: str
) -> Response:
    check_csrf(await request.form(), signed.session.csrf_token)
    before = await acks.acknowledge(acks.notification(token), signed)
    done = "已确认收到 / acknowledged" if before is None else "此前已确认 / acknowledged before"
    return page(request, "acknowledge.html", {"signed": signed, "token": token, "done": done})
