"""Sales-representative visits (医药代表来访), from the appointment desk or door registration.

000 §六(十五): reps see staff at fixed times, places and people (定时定点定人), with an
appointment, a procedure and a record (有预约有流程有记录); one found in a clinical area on no
clinical business is removed (驱离).
"""

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from schemas.base import Code, Contract, Event, EventTime, Submission
from schemas.labels import LabelledEnum


class PlaceKind(LabelledEnum):
    RECEPTION_ROOM = "reception_room", "接待室"
    OFFICE = "office", "办公室"
    MEETING_ROOM = "meeting_room", "会议室"
    CLINICAL_AREA = "clinical_area", "诊疗场所"
    WARD = "ward", "病房"
    OTHER = "other", "其他"


PersonName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
CompanyName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class VisitorLogFacts(Contract):
    rep_id: Code = Field(description="The rep's registration number at the appointment desk.")
    rep_name: PersonName
    company_code: Code
    company_name: CompanyName
    host_staff_id: Code | None = Field(
        default=None, description="The staff member the rep saw; none if nobody received them."
    )
    department: Code
    place_code: Code
    place_kind: PlaceKind
    started_at: EventTime
    ended_at: EventTime | None = Field(
        default=None, description="When the rep left; none while the visit is still open."
    )
    appointment_id: Code | None = Field(
        default=None,
        description="The appointment the visit was booked under; none: no appointment.",
    )

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Self:
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at must not precede started_at")
        return self


class VisitorLogSubmission(Submission, VisitorLogFacts):
    """A rep visit as the appointment desk or door registration records it."""

    event_type: Literal["visitor_log"] = "visitor_log"


class VisitorLogReceived(Event, VisitorLogFacts):
    """A rep visit accepted by intake."""

    event_type: Literal["visitor_log"] = "visitor_log"
    schema_version: Literal[1] = 1
