"""Leads (线索): events escalation's rules judged to need a case.

A rep visit that breaks the visiting rules (R-REP-VISIT), a satisfaction rating that is low or
names gifts, cash or scalping (R-SATISFACTION-LEAD), and a rectification that is perfunctory,
ineffective or refused (R-RECTIFY) each become a lead; the router opens its case like any other.
"""

import uuid
from typing import Literal

from pydantic import Field

from schemas.base import Code, Contract, EventTime
from schemas.case import CaseKind
from schemas.complaint import ComplaintCategory, ComplaintChannel


class Lead(Contract):
    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    source_event_id: uuid.UUID
    source_event_type: str
    rule_id: str
    rules_version: str
    case_kind: CaseKind
    category: ComplaintCategory | None = Field(
        default=None, description="For a complaint case (satisfaction leads): its category."
    )
    channel: ComplaintChannel | None = None
    accused_staff_id: Code | None = None
    concerned_department: Code | None = None
    company_code: Code | None = None
    occurred_at: EventTime
    received_at: EventTime
    explanation_zh: str
    explanation_en: str
