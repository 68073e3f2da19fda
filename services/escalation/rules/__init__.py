"""The hospital's rules, one module per subject; each rule a pure function of (the facts it
needs, the rule book, now) returning outcomes (``outcomes.py``): what it concluded, each to
become one decision carrying the rule id, the rule-book version, the facts used and one
sentence in Chinese and English (``wording.py``).

Where each rule lives:

- ``leads``: events that need a case — R-REP-VISIT, R-SATISFACTION-LEAD, R-RECTIFY, and
  R-SURRENDER for a late surrender.
- ``staff``: R-PROMO-2Y, R-KICKBACK, R-REFER-SEVERE, R-OUTSIDE-PHARMACY, R-PRESCRIBE,
  R-REPEAT-COMPLAINT, R-SURRENDER (recorded).
- ``company``: R-VENDOR-CUTOFF, R-REP-VISIT (removal alert), R-REP-REPEAT.
- ``department``: R-RECTIFY (criticism notice, reported upward).
- ``cases``: R-EVERY-COMPLAINT.
"""

from collections.abc import Callable, Sequence
from datetime import datetime

from schemas.case import CaseChange
from schemas.decision import Decision, DecisionKind, SubjectKind
from services.escalation.conduct import ConductFile, decision_of
from services.escalation.outcomes import Outcome
from services.escalation.rulebook import RuleBook
from services.escalation.rules.cases import overdue_escalations
from services.escalation.rules.company import company_outcomes
from services.escalation.rules.department import rectification_notices
from services.escalation.rules.staff import staff_outcomes

_BY_SUBJECT: dict[SubjectKind, Callable[..., Sequence[Outcome]]] = {
    SubjectKind.STAFF: staff_outcomes,
    SubjectKind.COMPANY: company_outcomes,
    SubjectKind.DEPARTMENT: rectification_notices,
    SubjectKind.CASE: overdue_escalations,
}


def evaluate(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    """Every decision the rules make on the whole file, as of ``now``."""
    outcomes = _BY_SUBJECT[file.subject_kind](file, book, now=now)
    return [decision_of(outcome, file, book, now=now) for outcome in outcomes]


def depends_on_clock(file: ConductFile, decisions: Sequence[Decision]) -> bool:
    """Whether time alone can change the file's decisions: a case still without a finding may
    become overdue; a cut-off in force will be lifted."""
    if file.case is not None:
        return all(entry.change is not CaseChange.FINDING_RECORDED for entry in file.case.history)
    kinds = [decision.kind for decision in decisions]
    return kinds.count(DecisionKind.VENDOR_CUTOFF) > kinds.count(DecisionKind.VENDOR_CUTOFF_LIFTED)
