"""Cases (案件) opened from events, and what the services decide about them."""

import uuid
from typing import Literal

from schemas.base import Code, Contract, EventTime
from schemas.complaint import ComplaintCategory, ComplaintChannel
from schemas.labels import LabelledEnum


def derive_case_id(source_event_id: uuid.UUID) -> str:
    """The case a source event opens; stable, so a redelivered event finds its case again."""
    return f"CASE-{source_event_id.hex[:20].upper()}"


def derive_output_event_id(case_id: str, kind: str) -> uuid.UUID:
    """Id of a service's output about a case: the same input always yields the same output id."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"qinglian:{kind}:{case_id}")


class DepartmentKind(LabelledEnum):
    FUNCTIONAL = "functional", "职能部门"
    CLINICAL = "clinical", "临床科室"
    AUXILIARY = "auxiliary", "医辅科室"
    GROUP = "group", "部门组"


class Department(Contract):
    code: Code
    name_zh: str
    name_en: str
    kind: DepartmentKind


class CaseRouted(Contract):
    """A case assigned to its responsible (责任部门) and cooperating departments (协同部门)."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    case_id: str
    source_event_id: uuid.UUID
    category: ComplaintCategory
    channel: ComplaintChannel
    accused_staff_id: Code | None = None
    accused_department: Code | None = None
    responsible_department: Department
    cooperating_departments: tuple[Department, ...]
    routing_basis: str
    """The seed passage the routing entry cites, e.g. "004 §四(三)1"."""
    routing_table_version: str
    opened_at: EventTime
    """When the hospital received the source event; the investigation clock starts here."""
    routed_at: EventTime


class DeadlineSet(Contract):
    """The investigation deadline of a case (凡诉必查)."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    case_id: str
    rule_id: str
    rules_version: str
    deadline: EventTime
    explanation_zh: str
    explanation_en: str
    decided_at: EventTime
