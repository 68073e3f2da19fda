"""Decisions (处理决定) of escalation's rules: every one names its rule, the rule-book version,
the facts it used and why, in Chinese and English.

A decision is never changed silently: when a late event changes what a rule decides (a finding
recorded after a promotion application, a finding revised), a new decision with the same
``key`` is published that ``corrects`` the earlier one; one that no longer holds is published
again with ``withdrawn`` set.
"""

import uuid
from datetime import date
from typing import Literal

from pydantic import Field

from schemas.base import Contract, EventTime
from schemas.labels import LabelledEnum


class DecisionKind(LabelledEnum):
    ESCALATION = "escalation", "上报"
    MEASURE = "measure", "处理措施"
    PROMOTION_BAR = "promotion_bar", "两年内不得提职晋级"
    PROMOTION_DECISION = "promotion_decision", "提职晋级审查"
    VENDOR_CUTOFF = "vendor_cutoff", "切断业务往来"
    VENDOR_CUTOFF_LIFTED = "vendor_cutoff_lifted", "恢复业务往来"
    REMOVAL_ALERT = "removal_alert", "驱离提醒"
    SURRENDER_RECORDED = "surrender_recorded", "红包主动上缴登记"
    NOTICE = "notice", "通报批评"


class EscalationTarget(LabelledEnum):
    DEPARTMENT_HEAD = "department_head", "科室负责人"
    LEADERSHIP_GROUP = "leadership_group", "领导小组"
    SUPERIOR_HEALTH_AUTHORITY = "superior_health_authority", "上级卫生行政部门"
    JUDICIAL_ORGANS = "judicial_organs", "司法机关"
    REGULATOR = "regulator", "监管部门"


class Measure(LabelledEnum):
    INTERVIEW = "interview", "约谈"
    REASSIGNMENT_OR_PAY_CUT = "reassignment_or_pay_cut", "调岗/核减绩效"
    SUSPENSION = "suspension", "暂停执业"


class SubjectKind(LabelledEnum):
    STAFF = "staff", "医务人员"
    COMPANY = "company", "企业"
    DEPARTMENT = "department", "科室"
    CASE = "case", "案件"


class Decision(Contract):
    schema_version: Literal[1] = 1
    event_id: uuid.UUID
    """Derived from the key and the content: the same decision always has the same id."""
    key: str
    """What the decision is about, e.g. ``R-PROMO-2Y:application:HR-2026-17``; a correction
    carries the key of the decision it corrects."""
    rule_id: str
    rules_version: str
    kind: DecisionKind
    subject_kind: SubjectKind
    subject_id: str
    case_id: str | None = None
    escalate_to: EscalationTarget | None = None
    measure: Measure | None = None
    allowed: bool | None = Field(
        default=None, description="For a promotion decision: may the application go ahead."
    )
    in_force_from: date | None = None
    in_force_until: date | None = Field(
        default=None, description="Last day a bar or cut-off is in force (inclusive)."
    )
    as_of: EventTime
    """The event time the decision rests on (a finding's date, an application's date, …)."""
    source_event_ids: tuple[uuid.UUID, ...]
    facts: dict[str, str] = Field(description="The facts the rule used, by name.")
    explanation_zh: str
    explanation_en: str
    corrects: uuid.UUID | None = None
    withdrawn: bool = False
    decided_at: EventTime
