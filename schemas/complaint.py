"""Complaints and whistleblower reports (投诉举报)."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints

from schemas.base import Code, Event, Submission, derive_event_id
from schemas.labels import LabelledEnum


class ComplaintCategory(LabelledEnum):
    RED_ENVELOPE = "red_envelope", "红包"
    KICKBACK = "kickback", "回扣"
    PROCUREMENT = "procurement", "招采/期权腐败"
    OUTSIDE_PHARMACY = "outside_pharmacy", "院外购药"
    APPOINTMENT_SCALPING = "appointment_scalping", "倒卖专家号"
    DUPLICATE_TEST = "duplicate_test", "重复检查"
    UNREASONABLE_TEST = "unreasonable_test", "不合理检查"
    ATTITUDE = "attitude", "服务态度"
    IMPROPER_RELATIONSHIP = "improper_relationship", "不正当关系"
    DRUNK_DRIVING = "drunk_driving", "酒驾"
    GAMBLING = "gambling", "赌博"
    OTHER = "other", "其他"


class ComplaintChannel(LabelledEnum):
    PORTAL = "portal", "网上平台"
    HOTLINE = "hotline", "投诉电话"
    MAILBOX = "mailbox", "投诉举报信箱"
    SOCIAL_SUPERVISOR = "social_supervisor", "社会监督员"
    INSPECTION = "inspection", "明查暗访"
    SATISFACTION_LEAD = "satisfaction_lead", "满意度评价线索"


Description = Annotated[str, StringConstraints(min_length=1, max_length=5000)]
AmountCNY = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class ComplaintSubmission(Submission):
    """A complaint as a source system sends it to intake."""

    channel: ComplaintChannel
    category: ComplaintCategory
    accused_staff_id: Code | None = None
    accused_department: Code | None = None
    description: Description = Field(description="What happened, in the complainant's words.")
    amount_cny: AmountCNY | None = Field(default=None, description="Amount involved, in yuan.")
    anonymous: bool = False


class ComplaintReceived(Event):
    """A complaint accepted by intake."""

    schema_version: Literal[1] = 1
    channel: ComplaintChannel
    category: ComplaintCategory
    accused_staff_id: Code | None = None
    accused_department: Code | None = None
    description: Description
    amount_cny: AmountCNY | None = None
    anonymous: bool = False

    @classmethod
    def accept(cls, submission: ComplaintSubmission, *, received_at: datetime) -> Self:
        return cls(
            **submission.model_dump(),
            event_id=derive_event_id(submission.source_system, submission.source_ref),
            received_at=received_at,
        )
