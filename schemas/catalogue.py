"""Every event type intake accepts: its contracts, its topic and its Kafka key.

Services look event types up here rather than listing them again: ``BY_TYPE["satisfaction"]``
gives the submission model to validate with, the event model to publish, the topic and the key.
``AnySubmission`` reads a record of any type, told apart by ``event_type`` (batches, the raw
topic). No I/O here.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from schemas import topics
from schemas.acknowledgement import NotificationAcknowledged
from schemas.base import Event, Submission
from schemas.case import CaseUpdated
from schemas.case_action import CaseActionReceived, CaseActionSubmission
from schemas.complaint import ComplaintReceived, ComplaintSubmission
from schemas.dead_letter import DeadLetter
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived, InvestigationFindingSubmission
from schemas.follow_up import FollowUpCodeIssued, ReporterAddition, ReporterReply
from schemas.kpi import KpiObservationReceived, KpiObservationSubmission
from schemas.lead import Lead
from schemas.notification import NotificationUpdated
from schemas.prescription import PrescriptionRankingReceived, PrescriptionRankingSubmission
from schemas.promotion import PromotionApplicationReceived, PromotionApplicationSubmission
from schemas.rectification import RectificationStatusReceived, RectificationStatusSubmission
from schemas.satisfaction import SatisfactionReceived, SatisfactionSubmission
from schemas.surrender import RedEnvelopeSurrenderReceived, RedEnvelopeSurrenderSubmission
from schemas.training import TrainingHeldReceived, TrainingHeldSubmission
from schemas.visitor_log import VisitorLogReceived, VisitorLogSubmission


@dataclass(frozen=True)
class EventKind:
    """One event type: what a source system sends, what travels on Kafka, and where."""

    event_type: str
    label_zh: str
    label_en: str
    submission: type[Submission]
    event: type[Event]
    topic: str
    key_field: str
    """The event field whose value keys the Kafka record: events that must stay in order
    (a staff member's, a case's, a company's, a department's) share a partition."""

    def __post_init__(self) -> None:
        for model in (self.submission, self.event):
            if model.model_fields["event_type"].default != self.event_type:
                raise ValueError(f"{model.__name__} is not of event type {self.event_type!r}")
        if self.key_field not in self.event.model_fields:
            raise ValueError(f"{self.event.__name__} has no key field {self.key_field!r}")
        if self.topic not in topics.FACTS:
            raise ValueError(f"{self.topic!r} is not a fact topic")

    def key(self, event: Event) -> bytes:
        """The Kafka key of ``event``: a UUID's 16 bytes, otherwise UTF-8 of the value's text."""
        if not isinstance(event, self.event):
            raise TypeError(f"a {self.event_type} key is for {self.event.__name__} events")
        value = getattr(event, self.key_field)
        if isinstance(value, uuid.UUID):
            return value.bytes
        if value is None:
            raise ValueError(f"{self.event_type} event without {self.key_field}")
        return str(value).encode("utf-8")


@dataclass(frozen=True)
class TopicMessage:
    """What a topic the services write (other than a fact topic) carries, and the field whose
    value keys its records, as ``EventKind.key`` encodes it (a UUID's 16 bytes, else UTF-8)."""

    topic: str
    message: type[BaseModel]
    key_field: str

    def __post_init__(self) -> None:
        if self.key_field not in self.message.model_fields:
            raise ValueError(f"{self.message.__name__} has no key field {self.key_field!r}")
        if self.topic in topics.FACTS:
            raise ValueError(f"{self.topic!r} is a fact topic: its kind is in CATALOGUE")


CATALOGUE: tuple[EventKind, ...] = (
    EventKind(
        event_type="complaint",
        label_zh="投诉举报",
        label_en="Complaint or whistleblower report",
        submission=ComplaintSubmission,
        event=ComplaintReceived,
        topic=topics.COMPLAINTS,
        key_field="event_id",
    ),
    EventKind(
        event_type="visitor_log",
        label_zh="医药代表来访",
        label_en="Sales-rep visit",
        submission=VisitorLogSubmission,
        event=VisitorLogReceived,
        topic=topics.VISITOR_LOGS,
        key_field="company_code",
    ),
    EventKind(
        event_type="satisfaction",
        label_zh="即时满意度评价",
        label_en="Instant satisfaction rating",
        submission=SatisfactionSubmission,
        event=SatisfactionReceived,
        topic=topics.SATISFACTION_RATINGS,
        key_field="event_id",
    ),
    EventKind(
        event_type="investigation_finding",
        label_zh="调查结论",
        label_en="Investigation finding",
        submission=InvestigationFindingSubmission,
        event=InvestigationFindingReceived,
        topic=topics.INVESTIGATION_FINDINGS,
        key_field="case_id",
    ),
    EventKind(
        event_type="promotion_application",
        label_zh="提职晋级申请",
        label_en="Promotion application",
        submission=PromotionApplicationSubmission,
        event=PromotionApplicationReceived,
        topic=topics.PROMOTION_APPLICATIONS,
        key_field="staff_id",
    ),
    EventKind(
        event_type="red_envelope_surrender",
        label_zh="红包主动上缴",
        label_en="Red envelope surrendered",
        submission=RedEnvelopeSurrenderSubmission,
        event=RedEnvelopeSurrenderReceived,
        topic=topics.RED_ENVELOPE_SURRENDERS,
        key_field="staff_id",
    ),
    EventKind(
        event_type="prescription_ranking",
        label_zh="药品耗材使用排名",
        label_en="Drug and consumable use ranking",
        submission=PrescriptionRankingSubmission,
        event=PrescriptionRankingReceived,
        topic=topics.PRESCRIPTION_RANKINGS,
        key_field="staff_id",
    ),
    EventKind(
        event_type="training_held",
        label_zh="专题学习",
        label_en="Study session held",
        submission=TrainingHeldSubmission,
        event=TrainingHeldReceived,
        topic=topics.TRAINING_SESSIONS,
        key_field="department",
    ),
    EventKind(
        event_type="kpi_observation",
        label_zh="KPI 观测",
        label_en="KPI observation",
        submission=KpiObservationSubmission,
        event=KpiObservationReceived,
        topic=topics.KPI_OBSERVATIONS,
        key_field="metric",
    ),
    EventKind(
        event_type="rectification_status",
        label_zh="整改",
        label_en="Rectification status",
        submission=RectificationStatusSubmission,
        event=RectificationStatusReceived,
        topic=topics.RECTIFICATION_STATUSES,
        key_field="department",
    ),
    EventKind(
        event_type="case_action",
        label_zh="案件处理",
        label_en="Case action by the conduct office",
        submission=CaseActionSubmission,
        event=CaseActionReceived,
        topic=topics.CASE_ACTIONS,
        key_field="case_id",
    ),
)
"""Every event type, in the order of DESIGN.md's events table, then the case actions."""

BY_TYPE: dict[str, EventKind] = {kind.event_type: kind for kind in CATALOGUE}

OUTPUTS: tuple[TopicMessage, ...] = (
    TopicMessage(topics.REPORTER_ADDITIONS, ReporterAddition, "complaint_event_id"),
    TopicMessage(topics.REPORTER_REPLIES, ReporterReply, "case_id"),
    TopicMessage(topics.FOLLOW_UP_CODES, FollowUpCodeIssued, "complaint_event_id"),
    TopicMessage(topics.LEADS, Lead, "source_event_id"),
    TopicMessage(topics.DECISIONS, Decision, "subject_id"),
    TopicMessage(topics.CASES, CaseUpdated, "case_id"),
    TopicMessage(topics.ACKNOWLEDGEMENTS, NotificationAcknowledged, "notification_id"),
    TopicMessage(topics.NOTIFICATIONS, NotificationUpdated, "notification_id"),
    TopicMessage(topics.DEAD_LETTERS, DeadLetter, "dead_letter_id"),
)
"""The services' own topics besides the facts, with their messages and keys (the AsyncAPI
document, tools/asyncapi.py). A topic no service writes carries submissions (AnySubmission)."""

MESSAGES: dict[str, type[BaseModel]] = {kind.topic: kind.event for kind in CATALOGUE} | {
    output.topic: output.message for output in OUTPUTS
}
"""What each topic's records are read as by the services consuming it."""

EventType = Literal[
    "complaint",
    "visitor_log",
    "satisfaction",
    "investigation_finding",
    "promotion_application",
    "red_envelope_surrender",
    "prescription_ranking",
    "training_held",
    "kpi_observation",
    "rectification_status",
    "case_action",
]
"""The event_type of every catalogued event type."""

if set(get_args(EventType)) != set(BY_TYPE) or len(BY_TYPE) != len(CATALOGUE):
    raise RuntimeError("EventType and CATALOGUE must list the same event types, each once")


class _EventTypeOnly(BaseModel):
    """Reads only the discriminator, so a missing or unknown type is refused at event_type."""

    model_config = ConfigDict(extra="ignore")

    event_type: EventType


def _event_type_first(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # Left to the union alone, a missing or unknown event_type is refused at the record, not
    # at the field, and the message repeats the submitted type.
    if isinstance(value, Mapping):
        _EventTypeOnly.model_validate(value)
    return handler(value)


AnyEvent = Annotated[
    ComplaintReceived
    | VisitorLogReceived
    | SatisfactionReceived
    | InvestigationFindingReceived
    | PromotionApplicationReceived
    | RedEnvelopeSurrenderReceived
    | PrescriptionRankingReceived
    | TrainingHeldReceived
    | KpiObservationReceived
    | RectificationStatusReceived
    | CaseActionReceived,
    Field(discriminator="event_type"),
]
"""An accepted event of any type, as it travels on its fact topic."""

AnySubmission = Annotated[
    ComplaintSubmission
    | VisitorLogSubmission
    | SatisfactionSubmission
    | InvestigationFindingSubmission
    | PromotionApplicationSubmission
    | RedEnvelopeSurrenderSubmission
    | PrescriptionRankingSubmission
    | TrainingHeldSubmission
    | KpiObservationSubmission
    | RectificationStatusSubmission
    | CaseActionSubmission,
    Field(discriminator="event_type"),
    WrapValidator(_event_type_first),
]
"""A submission of any event type, told apart by its ``event_type`` (required here).

Errors inside a record are located under its type, e.g. ``("satisfaction", "score")``.
"""

ANY_SUBMISSION: TypeAdapter[AnySubmission] = TypeAdapter(
    AnySubmission, config=ConfigDict(hide_input_in_errors=True)
)
"""Reads a submission of any type; its errors, even printed whole, show none of the values."""
