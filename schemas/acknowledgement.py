"""Acknowledgements (确认收到) of the notifier's notifications: a person signed in to the desk
opened a notification's acknowledge link. The desk publishes one per notification (the first
time its link is used); the notifier stops reminding, the desk's case page shows it.
"""

import uuid
from typing import Literal

from pydantic import Field

from schemas.base import Code, Contract, EventTime
from schemas.notification import AddresseeKey


class NotificationAcknowledged(Contract):
    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    """Derived from the notification's id: one acknowledgement per notification."""
    notification_id: uuid.UUID
    acknowledged_by: str = Field(min_length=1, max_length=64, description="The desk username.")
    acknowledged_by_staff_id: Code | None = None
    acknowledged_by_name: str | None = Field(
        default=None, min_length=1, max_length=64, description="The person's name on the desk."
    )
    acknowledged_for: AddresseeKey | None = Field(
        default=None,
        description="The addressee the person answered for (``group:…``, ``head:…``).",
    )
    acknowledged_at: EventTime
