"""Rules over a company's conduct file. Pure.

- R-VENDOR-CUTOFF (000 §二, §六(十二)): a company in a substantiated benefit transfer is
  referred to the regulator and cut off for the configured years; its visits meanwhile are
  flagged; the cut-off is lifted when it ends.
- R-REP-VISIT (000 §六(十五)): a rep in a clinical area is removed at once (驱离).
- R-REP-REPEAT (derived): repeated visit breaches within the window go to the leadership group.
"""

from datetime import datetime, timedelta
from operator import attrgetter

from schemas.base import hospital_day
from schemas.visitor_log import VisitorLogReceived
from services.escalation.conduct import ConductFile
from services.escalation.outcomes import (
    CutOffCompanyVisit,
    CutoffLifted,
    Outcome,
    RegulatorReferral,
    RepeatedVisitBreaches,
    RepInClinicalPlace,
    VendorCutoff,
)
from services.escalation.rulebook import RuleBook
from services.escalation.rules.leads import visit_breaches
from services.escalation.rules.staff import add_years
from services.escalation.rules.windows import trailing


def vendor_cutoffs(file: ConductFile, book: RuleBook) -> list[VendorCutoff]:
    rule = book.vendor_cutoff
    cutoffs = []
    for finding in file.standing_findings():
        confirmed = tuple(c for c in finding.confirmed_categories if c in rule.categories)
        if finding.substantiated and finding.company_code == file.subject_id and confirmed:
            until = add_years(hospital_day(finding.occurred_at), rule.years) - timedelta(days=1)
            cutoffs.append(VendorCutoff(finding, confirmed, rule.years, until))
    return cutoffs


def cutoff_outcomes(cutoffs: list[VendorCutoff], *, now: datetime) -> list[Outcome]:
    """Each cut-off, with its referral to the regulator, and lifted once it has ended."""
    outcomes: list[Outcome] = []
    for cutoff in cutoffs:
        outcomes += [cutoff, RegulatorReferral(cutoff.finding, cutoff.categories)]
        if hospital_day(now) > cutoff.in_force_until:
            outcomes.append(CutoffLifted(cutoff.finding, cutoff.in_force_until))
    return outcomes


def visit_alerts(file: ConductFile, cutoffs: list[VendorCutoff], book: RuleBook) -> list[Outcome]:
    """A rep in a clinical area is removed at once; a rep of a cut-off company is flagged."""
    alerts: list[Outcome] = []
    for visit in file.of_type(VisitorLogReceived):
        if visit.place_kind in book.rep_visit.clinical_place_kinds:
            alerts.append(RepInClinicalPlace(visit))
        day = hospital_day(visit.started_at)
        cutoff = next((c for c in cutoffs if c.in_force_from <= day <= c.in_force_until), None)
        if cutoff is not None:
            alerts.append(CutOffCompanyVisit(visit, cutoff))
    return alerts


def repeated_visit_breaches(file: ConductFile, book: RuleBook) -> list[RepeatedVisitBreaches]:
    rule = book.rep_repeat
    window = timedelta(days=rule.window_days)
    breaches = [v for v in file.of_type(VisitorLogReceived) if visit_breaches(v, book)]
    breaches.sort(key=lambda visit: (visit.started_at, str(visit.event_id)))
    return [
        RepeatedVisitBreaches(visit, within, rule.window_days)
        for visit, within in trailing(breaches, window, attrgetter("started_at"))
        if len(within) == rule.at
    ]


def company_outcomes(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Outcome]:
    cutoffs = vendor_cutoffs(file, book)
    return [
        *cutoff_outcomes(cutoffs, now=now),
        *visit_alerts(file, cutoffs, book),
        *repeated_visit_breaches(file, book),
    ]
