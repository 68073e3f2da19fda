"""R-EVERY-COMPLAINT (004 §四(三)1 凡诉必查): a case without a finding past its deadline goes to
the department head, and some days later to the leadership group. Pure; ``now`` is passed in,
so a test sets the clock.

A case that got its finding late was overdue all the same: the escalation stays.
"""

from datetime import datetime, timedelta

from schemas.case import CaseChange
from schemas.decision import Decision, DecisionKind, EscalationTarget
from services.escalation.conduct import ConductFile, decide
from services.escalation.rulebook import RuleBook

EVERY_COMPLAINT = "R-EVERY-COMPLAINT"


def overdue_escalations(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    case = file.case
    if case is None:
        return []
    findings = [entry.at for entry in case.history if entry.change is CaseChange.FINDING_RECORDED]
    investigated_at = min(findings, default=now)
    steps = (
        (EscalationTarget.DEPARTMENT_HEAD, case.deadline),
        (
            EscalationTarget.LEADERSHIP_GROUP,
            case.deadline + timedelta(days=book.every_complaint.leadership_after_days),
        ),
    )
    return [
        decide(
            book,
            rule_id=EVERY_COMPLAINT,
            key=f"case:{case.case_id}:{target}",
            kind=DecisionKind.ESCALATION,
            escalate_to=target,
            subject=file,
            case_id=case.case_id,
            as_of=due,
            sources=[],
            facts={"deadline": case.deadline.isoformat(), "due": due.isoformat()},
            explanation_zh=(
                f"凡诉必查：案件{case.case_id}至{due:%Y-%m-%d %H:%M}仍无调查结论，"
                f"上报{target.label_zh}。"
            ),
            explanation_en=(
                f"Every complaint is investigated: case {case.case_id} had no finding by "
                f"{due:%Y-%m-%d %H:%M}; escalated to the {target.replace('_', ' ')}."
            ),
            now=now,
        )
        for target, due in steps
        if investigated_at > due
    ]
