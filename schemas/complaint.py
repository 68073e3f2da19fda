"""Complaints and whistleblower reports (投诉举报)."""

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from schemas.base import AmountCNY, Code, Contract, Event, Flag, Submission
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


class ContactDetails(Contract):
    """How to reach a complainant. Encrypted at rest by intake; never published."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{5,32}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")] | None = None
    address: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not any((self.name, self.phone, self.email, self.address)):
            raise ValueError("give at least one of name, phone, email, address, or leave it out")
        return self


class ComplaintFacts(Contract):
    channel: ComplaintChannel
    category: ComplaintCategory
    accused_staff_id: Code | None = None
    accused_department: Code | None = None
    description: Description = Field(description="What happened, in the complainant's words.")
    amount_cny: AmountCNY | None = Field(default=None, description="Amount involved, in yuan.")
    anonymous: Flag = False


class ComplaintSubmission(Submission, ComplaintFacts):
    """A complaint or whistleblower report as a source system sends it to intake."""

    private_fields: ClassVar[frozenset[str]] = frozenset({"complainant_contact"})

    event_type: Literal["complaint"] = "complaint"
    complainant_contact: ContactDetails | None = Field(
        default=None, description="Kept encrypted by intake; never published."
    )

    @model_validator(mode="after")
    def _anonymous_means_no_contact(self) -> Self:
        if self.anonymous and self.complainant_contact is not None:
            raise ValueError("an anonymous complaint carries no complainant_contact")
        return self


class ComplaintReceived(Event, ComplaintFacts):
    """A complaint accepted by intake."""

    event_type: Literal["complaint"] = "complaint"
    schema_version: Literal[1] = 1
    contact_on_file: Flag = Field(
        default=False, description="Intake holds the complainant's contact details (encrypted)."
    )
