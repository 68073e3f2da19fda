"""Rules over a staff member's conduct file (医德档案). Pure.

- R-PROMO-2Y (004 §五(三)): no promotion for two years from a substantiated conduct finding.
- R-KICKBACK (000 §六(十五)): reported upward; handled by amount; judicial transfer.
- R-REFER-SEVERE (004 §四(三)2): improper relationship with severe impact, reported upward.
- R-OUTSIDE-PHARMACY (004 §四(一)2): an unapproved outside-pharmacy referral is a breach.
- R-PRESCRIBE (000 §六(十四)): graded measures for unjustified top drug/consumable use.
- R-REPEAT-COMPLAINT (derived): many complaints in a short time, escalated before any finding.
- R-SURRENDER (000 §四(七)): a red envelope handed in within the window is not a breach.
"""

from datetime import date, datetime, timedelta
from operator import attrgetter

from schemas.base import hospital_day
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.decision import Measure
from schemas.finding import InvestigationFindingReceived
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from services.escalation.conduct import ConductFile
from services.escalation.outcomes import (
    JudicialTransfer,
    KickbackReported,
    Outcome,
    OutsidePharmacyBreach,
    PrescribingMeasure,
    PromotionAllowed,
    PromotionBar,
    PromotionRefused,
    RepeatedComplaints,
    SevereReferral,
    SurrenderRecorded,
)
from services.escalation.rulebook import RuleBook
from services.escalation.rules.leads import surrendered_in_time
from services.escalation.rules.windows import trailing


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 1 March."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _findings_against(file: ConductFile) -> list[InvestigationFindingReceived]:
    return [
        finding
        for finding in file.standing_findings()
        if finding.substantiated and file.subject_id in finding.staff_ids
    ]


# --- R-PROMO-2Y ---------------------------------------------------------------------------------


def promotion_bars(file: ConductFile, book: RuleBook) -> list[PromotionBar]:
    """Each substantiated conduct, drunk-driving or gambling finding bars promotion for the
    configured years from the finding's date."""
    rule = book.promotion_bar
    bars = []
    for finding in _findings_against(file):
        barred_for = tuple(c for c in finding.confirmed_categories if c in rule.categories)
        if barred_for:
            until = add_years(hospital_day(finding.occurred_at), rule.years) - timedelta(days=1)
            bars.append(PromotionBar(finding, barred_for, rule.years, until))
    return bars


def bar_on(bars: list[PromotionBar], day: date) -> PromotionBar | None:
    """The bar in force on ``day`` that lasts longest, if any."""
    in_force = [bar for bar in bars if bar.in_force_from <= day <= bar.in_force_until]
    return max(in_force, key=lambda bar: (bar.in_force_until, bar.case_id), default=None)


def promotion_decisions(file: ConductFile, bars: list[PromotionBar]) -> list[PromotionAllowed]:
    """Each application is refused while a bar is in force on its date, naming the case and
    the bar's last day; otherwise allowed."""
    decisions = []
    for application in file.of_type(PromotionApplicationReceived):
        bar = bar_on(bars, hospital_day(application.occurred_at))
        if bar is None:
            decisions.append(PromotionAllowed(application))
        else:
            decisions.append(PromotionRefused(application, bar))
    return decisions


# --- Findings reported upward -------------------------------------------------------------------


def kickback_escalations(file: ConductFile, book: RuleBook) -> list[Outcome]:
    rule = book.kickback
    outcomes: list[Outcome] = []
    for finding in _findings_against(file):
        if ComplaintCategory.KICKBACK not in finding.confirmed_categories:
            continue
        amount = finding.confirmed_amount_cny
        # No confirmed amount: the tier from 0 yuan (every tier would match None otherwise,
        # and the harshest be taken).
        tier = [t for t in rule.tiers if t.from_cny <= (amount or 0)][-1]
        outcomes.append(KickbackReported(finding, tier))
        over = amount is not None and amount >= rule.judicial_transfer_from_cny
        if over or finding.suspected_crime:
            outcomes.append(JudicialTransfer(finding, rule.judicial_transfer_from_cny, over))
    return outcomes


def severe_referrals(file: ConductFile) -> list[SevereReferral]:
    return [
        SevereReferral(finding)
        for finding in _findings_against(file)
        if ComplaintCategory.IMPROPER_RELATIONSHIP in finding.confirmed_categories
        and finding.severe_social_impact
    ]


def outside_pharmacy_breaches(file: ConductFile) -> list[OutsidePharmacyBreach]:
    return [
        OutsidePharmacyBreach(finding)
        for finding in _findings_against(file)
        if ComplaintCategory.OUTSIDE_PHARMACY in finding.confirmed_categories
    ]


# --- R-PRESCRIBE --------------------------------------------------------------------------------

_GRADES = (Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT, Measure.SUSPENSION)


def prescribing_measures(file: ConductFile, book: RuleBook) -> list[PrescribingMeasure]:
    """The 1st month ranked at the top without justification within the window gets an
    interview, the 2nd a reassignment or pay cut, the 3rd and later a suspension."""
    rule = book.prescribe
    by_month: dict[str, list[PrescriptionRankingReceived]] = {}
    for ranking in file.of_type(PrescriptionRankingReceived):
        if not ranking.justified and ranking.rank <= rule.top_rank:
            by_month.setdefault(ranking.month, []).append(ranking)
    months = sorted(by_month)
    measures = []
    for month in months:
        start = date.fromisoformat(f"{month}-01")
        count = len(
            [
                m
                for m in months
                if m <= month
                and start - date.fromisoformat(f"{m}-01") <= timedelta(rule.window_days)
            ]
        )
        measure = _GRADES[min(count, len(_GRADES)) - 1]
        rankings = tuple(by_month[month])
        measures.append(PrescribingMeasure(month, rankings, count, measure, rule.window_days))
    return measures


# --- R-REPEAT-COMPLAINT -------------------------------------------------------------------------


def repeat_complaints(file: ConductFile, book: RuleBook) -> list[RepeatedComplaints]:
    """Escalate at each complaint that brings the count within the window to the threshold."""
    rule = book.repeat_complaint
    window = timedelta(days=rule.window_days)
    complaints = file.of_type(ComplaintReceived)
    return [
        RepeatedComplaints(complaint=complaint, within=within, window_days=rule.window_days)
        for complaint, within in trailing(complaints, window, attrgetter("occurred_at"))
        if len(within) == rule.at
    ]


# --- R-SURRENDER --------------------------------------------------------------------------------


def surrenders(file: ConductFile, book: RuleBook) -> list[SurrenderRecorded]:
    return [
        SurrenderRecorded(surrender, book.surrender.window_days)
        for surrender in file.of_type(RedEnvelopeSurrenderReceived)
        if surrendered_in_time(surrender, book)
    ]


def staff_outcomes(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Outcome]:
    """Every rule over a staff member's file; none depends on the clock."""
    bars = promotion_bars(file, book)
    return [
        *bars,
        *promotion_decisions(file, bars),
        *kickback_escalations(file, book),
        *severe_referrals(file),
        *outside_pharmacy_breaches(file),
        *prescribing_measures(file, book),
        *repeat_complaints(file, book),
        *surrenders(file, book),
    ]
