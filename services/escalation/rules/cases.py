"""R-EVERY-COMPLAINT (004 §四(三)1 凡诉必查): a case without a finding past its deadline goes to
the department head, and some days later to the leadership group. Pure; ``now`` is passed in,
so a test sets the clock.

A case that got its finding late was overdue all the same: the escalation stays.
"""

from datetime import datetime, timedelta

from schemas.case import CaseChange
from schemas.decision import EscalationTarget
from services.escalation.conduct import ConductFile
from services.escalation.outcomes import OverdueCase
from services.escalation.rulebook import RuleBook


def overdue_escalations(file: ConductFile, book: RuleBook, *, now: datetime) -> list[OverdueCase]:
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
    return [OverdueCase(case, target, due) for target, due in steps if investigated_at > due]
