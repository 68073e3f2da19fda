"""Registers built from escalation's decisions (the latest decision per key). Pure.

- 提职晋级限制登记: who may not be promoted, until when, because of which case.
- 切断业务往来名单: companies cut off, until when, and whether lifted.
- 上报清单: escalations, by rule and to whom.
- 通报: criticism notices.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime

from pydantic import BaseModel

from schemas.decision import Decision, DecisionKind, EscalationTarget
from services.common.departments import DepartmentCatalogue
from services.reporting.presentation import department_name


def standing(decisions: Iterable[Decision]) -> list[Decision]:
    """The decisions in force: the latest per key, unless withdrawn."""
    latest: dict[str, Decision] = {}
    for decision in decisions:
        current = latest.get(decision.key)
        if current is None or decision.decided_at >= current.decided_at:
            latest[decision.key] = decision
    return sorted((d for d in latest.values() if not d.withdrawn), key=lambda d: (d.as_of, d.key))


class PromotionBar(BaseModel):
    staff_id: str
    case_id: str | None
    barred_from: date | None
    barred_until: date | None
    in_force: bool
    explanation_zh: str


def promotion_bars(decisions: Iterable[Decision], *, today: date) -> list[PromotionBar]:
    return [
        PromotionBar(
            staff_id=d.subject_id,
            case_id=d.case_id,
            barred_from=d.in_force_from,
            barred_until=d.in_force_until,
            in_force=d.in_force_until is not None and today <= d.in_force_until,
            explanation_zh=d.explanation_zh,
        )
        for d in standing(decisions)
        if d.kind is DecisionKind.PROMOTION_BAR
    ]


class VendorCutoff(BaseModel):
    company_code: str
    case_id: str | None
    cut_off_from: date | None
    cut_off_until: date | None
    lifted: bool
    explanation_zh: str


def vendor_cutoffs(decisions: Iterable[Decision]) -> list[VendorCutoff]:
    current = standing(decisions)
    lifted = {d.case_id for d in current if d.kind is DecisionKind.VENDOR_CUTOFF_LIFTED}
    return [
        VendorCutoff(
            company_code=d.subject_id,
            case_id=d.case_id,
            cut_off_from=d.in_force_from,
            cut_off_until=d.in_force_until,
            lifted=d.case_id in lifted,
            explanation_zh=d.explanation_zh,
        )
        for d in current
        if d.kind is DecisionKind.VENDOR_CUTOFF
    ]


class EscalationEntry(BaseModel):
    rule_id: str
    escalate_to: EscalationTarget | None
    escalate_to_zh: str
    subject: str
    case_id: str | None
    as_of: datetime
    explanation_zh: str
    explanation_en: str


class RuleCount(BaseModel):
    rule_id: str
    count: int


def escalations(decisions: Iterable[Decision]) -> tuple[list[EscalationEntry], list[RuleCount]]:
    entries = [
        EscalationEntry(
            rule_id=d.rule_id,
            escalate_to=d.escalate_to,
            escalate_to_zh="" if d.escalate_to is None else d.escalate_to.label_zh,
            subject=f"{d.subject_kind}:{d.subject_id}",
            case_id=d.case_id,
            as_of=d.as_of,
            explanation_zh=d.explanation_zh,
            explanation_en=d.explanation_en,
        )
        for d in standing(decisions)
        if d.kind is DecisionKind.ESCALATION
    ]
    return entries, rule_counts(entries)


def rule_counts(entries: Iterable[EscalationEntry]) -> list[RuleCount]:
    counts = Counter(entry.rule_id for entry in entries)
    return [RuleCount(rule_id=rule_id, count=n) for rule_id, n in sorted(counts.items())]


class Notice(BaseModel):
    department: str
    department_zh: str
    department_en: str
    as_of: datetime
    item: str
    explanation_zh: str


def notices(decisions: Iterable[Decision], catalogue: DepartmentCatalogue) -> list[Notice]:
    return [
        Notice(
            **department_name(d.subject_id, catalogue).model_dump(),
            as_of=d.as_of,
            item=d.facts.get("item", ""),
            explanation_zh=d.explanation_zh,
        )
        for d in standing(decisions)
        if d.kind is DecisionKind.NOTICE
    ]
