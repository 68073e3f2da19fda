"""Cases (案件): what the router opens from events, and every change it records on them.

The router publishes the whole case after each change (``CaseUpdated``, with a revision that
grows by one per change), so a consumer keeps the highest revision it has seen and needs no
other topic to know a case's state.
"""

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas.base import Code, Contract, EventTime
from schemas.complaint import ComplaintCategory, ComplaintChannel
from schemas.labels import LabelledEnum

CaseId = Annotated[
    str,
    StringConstraints(pattern=r"^CASE-[0-9A-F]{20}$"),
    Field(description="A case id, as schemas.case.derive_case_id makes it."),
]


def derive_case_id(source_event_id: uuid.UUID) -> str:
    """The case a source event opens; stable, so a redelivered event finds its case again."""
    return f"CASE-{source_event_id.hex[:20].upper()}"


def derive_output_event_id(*parts: object) -> uuid.UUID:
    """Id of a service's output: the same input always yields the same output id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "qinglian:" + ":".join(str(part) for part in parts))


class DepartmentKind(LabelledEnum):
    FUNCTIONAL = "functional", "职能部门"
    CLINICAL = "clinical", "临床科室"
    AUXILIARY = "auxiliary", "医辅科室"


class Department(Contract):
    code: Code
    name_zh: str
    name_en: str
    kind: DepartmentKind


class CaseKind(LabelledEnum):
    COMPLAINT = "complaint", "投诉举报"
    REP_VISIT = "rep_visit", "医药代表违规来访"
    RECTIFICATION = "rectification", "整改不到位"


class CaseState(LabelledEnum):
    OPENED = "opened", "已受理"
    ASSIGNED = "assigned", "已分派"
    INVESTIGATING = "investigating", "调查中"
    FINDING_RECORDED = "finding_recorded", "已有调查结论"
    CLOSED = "closed", "已结案"


class CaseChange(LabelledEnum):
    OPENED = "opened", "受理"
    ASSIGNED = "assigned", "分派"
    LINKED = "linked", "关联同类投诉"
    REASSIGNED = "reassigned", "改派"
    INVESTIGATION_STARTED = "investigation_started", "开始调查"
    FINDING_RECORDED = "finding_recorded", "记录调查结论"
    CLOSED = "closed", "结案"
    REPORTER_ADDED = "reporter_added", "举报人补充材料"
    REPORTER_REPLIED = "reporter_replied", "答复举报人"
    REFUSED = "refused", "操作被拒绝"


class HistoryEntry(Contract):
    """One change of a case: what, who, when, and the event it came from."""

    change: CaseChange
    state: CaseState
    """The case's state after the change."""
    at: EventTime
    """When it happened (the source event's time), not when the router saw it."""
    by: str
    """Who made the change: a source system, an officer's staff id, or "router"."""
    source_event_id: uuid.UUID
    department: Code | None = None
    """The responsible department after an assignment or reassignment."""
    note: str | None = None


class CaseUpdated(Contract):
    """A case as it stands after its latest change."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    case_id: CaseId
    revision: int = Field(ge=1, description="1 when opened; one more per change.")
    kind: CaseKind
    category: ComplaintCategory | None = Field(
        default=None, description="The complaint category; none for other kinds of case."
    )
    channel: ComplaintChannel | None = None
    source_event_ids: tuple[uuid.UUID, ...] = Field(
        description="The events the case rests on: the first opened it, later ones were linked."
    )
    accused_staff_id: Code | None = None
    concerned_department: Code | None = Field(
        default=None, description="The department the case is about (accused's, visited, …)."
    )
    company_code: Code | None = None
    responsible_department: Department
    cooperating_departments: tuple[Department, ...]
    handlers: tuple[Code, ...] = Field(
        description="Staff who handle the case: the heads of its departments, never the accused."
    )
    state: CaseState
    deadline: EventTime
    routing_basis: str
    """The seed passages the routing entries cite, e.g. "004 §四(三)1"."""
    routing_table_version: str
    opened_at: EventTime
    """When the hospital received the first source event; the investigation clock starts here."""
    history: tuple[HistoryEntry, ...]
    updated_at: EventTime
    """When the router recorded the latest change."""
