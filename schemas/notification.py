"""Notifications (通知) as the notifier records, sends or gives them up: who was told of what
and where each stands. Published by the notifier each time a notification's state changes
(recorded, sent, failed); the desk shows them on the case page and in its register, beside
their acknowledgements (``schemas/acknowledgement.py``).

Never an address, the reporter or the complaint's text: the addressee is named by its key in
the directory (``group:leadership``, ``head:finance``) and its Chinese name.
"""

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import Code, Contract, EventTime
from schemas.labels import LabelledEnum


class NotificationStatus(LabelledEnum):
    PENDING = "pending", "待发送"
    SENT = "sent", "已发送"
    FAILED = "failed", "发送失败"

    @property
    def rank(self) -> int:
        """A later state replaces an earlier one; sent and failed are both final."""
        return 0 if self is NotificationStatus.PENDING else 1


AddresseeKey = Annotated[str, StringConstraints(pattern=r"^(group|head):[A-Za-z0-9_.-]{1,64}$")]


class NotificationUpdated(Contract):
    """A notification as it stands after its latest change."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    """Derived from the notification's id and its status: one event per state."""
    notification_id: uuid.UUID
    purpose: Literal["decision", "reminder", "superior", "digest", "monthly_report"]
    marker: Literal["new", "correction", "withdrawal"]
    send_key: Code
    rule_id: str = Field(min_length=1, max_length=64)
    case_id: str | None = Field(default=None, max_length=64)
    subject_id: str = Field(min_length=1, max_length=64)
    addressee: AddresseeKey
    addressee_zh: str = Field(min_length=1, max_length=64)
    acknowledges: uuid.UUID | None = Field(
        default=None, description="A reminder's: the notification its link acknowledges."
    )
    asks_for_ack: bool
    accused: tuple[Code, ...] = Field(
        default=(), description="Staff numbers the decision or its case accuses: never told."
    )
    status: NotificationStatus
    recorded_at: EventTime
    deadline: EventTime
    sent_at: EventTime | None = None
    changed_at: EventTime
