"""Test data: valid events with sensible defaults, overridable per test."""

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived, ComplaintSubmission
from schemas.decision import Decision, DecisionKind, EscalationTarget, SubjectKind
from services.router.domain import Opening, open_case
from services.router.routing import Routing
from services.router.settings import RouterSettings


def complaint_payload(**overrides: Any) -> dict[str, Any]:
    """A complaint as a source system posts it (JSON-ready)."""
    payload: dict[str, Any] = {
        "source_system": "portal",
        "source_ref": "REF-1",
        "occurred_at": "2026-11-20T09:30:00+08:00",
        "channel": "portal",
        "category": "kickback",
        "accused_staff_id": "D1001",
        "accused_department": "cardiology",
        "description": "医生收取医药代表回扣。",
        "amount_cny": "5000.00",
    }
    payload.update(overrides)
    return payload


def complaint_event(
    *, received_at: datetime = datetime(2026, 11, 20, 2, 0, tzinfo=UTC), **overrides: Any
) -> ComplaintReceived:
    submission = ComplaintSubmission.model_validate(complaint_payload(**overrides))
    return ComplaintReceived.accept(submission, received_at=received_at)


ROUTING = Routing.load(RouterSettings().departments, RouterSettings().routing_table)
"""The routing the router loads: the shipped department catalogue and routing table."""


def routed_case(complaint: ComplaintReceived, *, now: datetime | None = None) -> CaseUpdated:
    """The case the router opens for a complaint."""
    return open_case(Opening.of_complaint(complaint), ROUTING, now=now or complaint.received_at)


def escalation_decision(
    *,
    rule_id: str,
    key: str,
    subject: tuple[SubjectKind, str],
    case_id: str,
    escalate_to: EscalationTarget,
    at: datetime,
    facts: dict[str, object],
    explanation: tuple[str, str],
    sources: tuple[uuid.UUID, ...] = (),
) -> Decision:
    """An escalation as escalation's rules publish it (explanation: Chinese, English)."""
    return Decision(
        event_id=uuid.uuid4(),
        key=key,
        rule_id=rule_id,
        rules_version="test",
        kind=DecisionKind.ESCALATION,
        subject_kind=subject[0],
        subject_id=subject[1],
        case_id=case_id,
        escalate_to=escalate_to,
        as_of=at,
        source_event_ids=sources or (uuid.uuid4(),),
        facts=facts,
        explanation_zh=explanation[0],
        explanation_en=explanation[1],
        decided_at=at,
    )


def judicial_decision(at: datetime) -> Decision:
    """A kickback case transferred to the judicial organs (two addressees, by email)."""
    case_id = f"CASE-{uuid.uuid4().hex[:20].upper()}"
    return escalation_decision(
        rule_id="R-KICKBACK",
        key=f"case:{case_id}:judicial",
        subject=(SubjectKind.STAFF, f"S{uuid.uuid4().hex[:6].upper()}"),
        case_id=case_id,
        escalate_to=EscalationTarget.JUDICIAL_ORGANS,
        at=at,
        facts={"amount_cny": "50000.00"},
        explanation=("移送司法机关。", "Transferred to the judicial organs."),
    )
