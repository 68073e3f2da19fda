"""What reporting keeps of each event and case, and under which month, department and category
it counts. Pure.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel

from schemas.base import HOSPITAL_TIME_ZONE, Event
from schemas.case import CaseChange, CaseKind, CaseState, CaseUpdated, HistoryEntry
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.finding import InvestigationFindingReceived
from schemas.kpi import KpiObservationReceived
from schemas.prescription import PrescriptionRankingReceived
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.training import TrainingHeldReceived
from schemas.visitor_log import VisitorLogReceived
from services.common.departments import DepartmentCatalogue

HOSPITAL = "hospital"
"""The scope of what concerns the whole hospital rather than one department."""


def report_month(moment: datetime | date) -> str:
    """The reporting month (YYYY-MM) of a moment, in hospital time."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(HOSPITAL_TIME_ZONE)
    return f"{moment.year:04d}-{moment.month:02d}"


@dataclass(frozen=True, slots=True)
class CountKey:
    """What one event adds one to: its month, department, type and category. (A dataclass, not
    a model: one is made and hashed for every record counted.)"""

    month: str
    department: str | None
    event_type: str
    category: ComplaintCategory | None = None
    complaint_against_head: str | None = None
    """The event id of a complaint against the head of the department it accuses, which counts
    under no department here (that department's figures must not reveal it); the monthly
    report counts it under the department that handles its case."""
    accused_staff_id: str | None = None
    """Whom a complaint accuses: a figure shown to that person leaves it out (a case against a
    person is invisible to them, its count included)."""

    def order(self) -> tuple[str, ...]:
        """Where the key sorts among others, for documents written the same way every time."""
        return (
            self.month,
            self.department or "",
            self.event_type,
            self.category or "",
            self.complaint_against_head or "",
            self.accused_staff_id or "",
        )


def count_key(event: Event, departments: DepartmentCatalogue) -> CountKey:
    """Where an event counts in 基本情况. Month: when the hospital received it (受理), as cases
    count. Department: the one the event is about (the accused's, the visited, the rated, …);
    none for events about no department (promotion applications, surrenders, findings, the
    office's case actions) and for a complaint against the head of the department it accuses.
    A complaint's key also names whom it accuses, for the figures shown to that person."""
    department: str | None = None
    category: ComplaintCategory | None = None
    against_head: str | None = None
    accused: str | None = None
    if isinstance(event, ComplaintReceived):
        department, category = event.accused_department, event.category
        accused = event.accused_staff_id
        if departments.is_head(event.accused_staff_id, department):
            department, against_head = None, str(event.event_id)
    elif isinstance(
        event,
        VisitorLogReceived
        | SatisfactionReceived
        | PrescriptionRankingReceived
        | TrainingHeldReceived
        | RectificationStatusReceived,
    ):
        department = event.department
    elif isinstance(event, KpiObservationReceived):
        department = None if event.scope == HOSPITAL else event.scope
    elif isinstance(event, InvestigationFindingReceived) and event.confirmed_categories:
        category = event.confirmed_categories[0]
    return CountKey(
        month=report_month(event.received_at),
        department=department,
        event_type=str(getattr(event, "event_type")),  # noqa: B009 (every fact event has one)
        category=category,
        complaint_against_head=against_head,
        accused_staff_id=accused,
    )


class CaseFact(BaseModel):
    """A case as the reports need it, as of its latest revision."""

    case_id: str
    revision: int
    month: str
    kind: CaseKind
    category: ComplaintCategory | None
    department: str
    department_zh: str
    department_en: str
    concerned_department: str | None
    accused_staff_id: str | None
    state: CaseState
    events: int
    source_event_ids: tuple[str, ...] = ()
    """The events the case rests on (empty in a fact stored before they were kept: a rebuild
    fills it)."""
    opened_at: datetime
    deadline: datetime
    finding_at: datetime | None
    closed_at: datetime | None

    @property
    def investigated(self) -> bool:
        return self.finding_at is not None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def on_time(self) -> bool:
        """A finding by the deadline: such a case is overdue at no time."""
        return self.finding_at is not None and self.finding_at <= self.deadline

    def overdue(self, now: datetime) -> bool:
        """Past its deadline at ``now`` without a finding by then (a later one does not
        undo that: a past month's report still lists the case)."""
        return now > self.deadline and (self.finding_at is None or self.finding_at > now)


class CaseRecord(CaseFact):
    """A case fact with the case's whole history, oldest first: every change, and every action
    refused with its reason, as the router recorded them. What is stored and what the case view
    shows; the reports read the fact alone."""

    history: tuple[HistoryEntry, ...]


_AS_THE_CASE_HAS_IT = (
    "case_id",
    "revision",
    "kind",
    "category",
    "concerned_department",
    "accused_staff_id",
    "state",
    "opened_at",
    "deadline",
    "history",
)
"""What a case record keeps of the case under the case's own names."""


def case_fact(case: CaseUpdated) -> CaseRecord:
    findings = [e.at for e in case.history if e.change is CaseChange.FINDING_RECORDED]
    closings = [e.at for e in case.history if e.change is CaseChange.CLOSED]
    department = case.responsible_department
    return CaseRecord(
        **{name: getattr(case, name) for name in _AS_THE_CASE_HAS_IT},
        month=report_month(case.opened_at),
        department=department.code,
        department_zh=department.name_zh,
        department_en=department.name_en,
        events=len(case.source_event_ids),
        source_event_ids=tuple(map(str, case.source_event_ids)),
        finding_at=min(findings, default=None),
        closed_at=max(closings, default=None),
    )


def department_cases(
    cases: Iterable[CaseFact], department: str | None, departments: DepartmentCatalogue
) -> list[CaseFact]:
    """The cases ``department``'s figures show (every case for None, the hospital): those it
    handles, except any against its own head, to whom a case against them is invisible."""
    return [
        case
        for case in cases
        if department is None
        or (
            case.department == department
            and not departments.is_head(case.accused_staff_id, department)
        )
    ]
