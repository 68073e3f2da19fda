"""What the rules conclude about a conduct file: small typed values, one per decision.

A rule (``rules/``) returns outcomes; ``conduct.decision_of`` turns each into the decision
escalation publishes, worded by ``wording.py``. An outcome holds what its decision rests on
and says how the decision is keyed (``key``), dated (``as_of``), sourced (``sources``) and
what facts it records; attributes named as the decision's fields (``case_id``,
``escalate_to``, ``measure``, ``allowed``, ``in_force_from``, ``in_force_until``) become
those fields. Pure.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import ClassVar

from schemas.base import HOSPITAL_TIME_ZONE, Event, hospital_day
from schemas.case import CaseUpdated
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.decision import DecisionKind, EscalationTarget, Measure
from schemas.finding import InvestigationFindingReceived
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.rectification import RectificationStatusReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.escalation.rulebook import KickbackTier

PROMO_2Y = "R-PROMO-2Y"
KICKBACK = "R-KICKBACK"
REFER_SEVERE = "R-REFER-SEVERE"
OUTSIDE_PHARMACY = "R-OUTSIDE-PHARMACY"
PRESCRIBE = "R-PRESCRIBE"
REPEAT_COMPLAINT = "R-REPEAT-COMPLAINT"
SURRENDER = "R-SURRENDER"
VENDOR_CUTOFF = "R-VENDOR-CUTOFF"
REP_VISIT = "R-REP-VISIT"
REP_REPEAT = "R-REP-REPEAT"
RECTIFY = "R-RECTIFY"
EVERY_COMPLAINT = "R-EVERY-COMPLAINT"
SATISFACTION_LEAD = "R-SATISFACTION-LEAD"

Facts = Mapping[str, object]


@dataclass(frozen=True)
class Outcome:
    """One decision a rule makes, before it is worded."""

    rule_id: ClassVar[str]
    kind: ClassVar[DecisionKind]
    suffix: ClassVar[str] = ""
    """Tells the decision apart from another of its rule about the same thing (``:report``)."""

    @property
    def about(self) -> str:
        """What the decision is about, under its rule (``case:…``, ``visit:…``)."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        return f"{self.about}{self.suffix}"

    @property
    def as_of(self) -> datetime:
        raise NotImplementedError

    @property
    def sources(self) -> Sequence[Event]:
        raise NotImplementedError

    @property
    def facts(self) -> Facts:
        raise NotImplementedError


@dataclass(frozen=True)
class OnEvent(Outcome):
    """Rests on one event, held in the field named ``noun``: about it as ``noun:<event id>``,
    dated when it happened."""

    noun: ClassVar[str]

    @property
    def event(self) -> Event:
        event: Event = getattr(self, self.noun)
        return event

    @property
    def about(self) -> str:
        return f"{self.noun}:{self.event.event_id}"

    @property
    def as_of(self) -> datetime:
        return self.event.occurred_at

    @property
    def sources(self) -> Sequence[Event]:
        return (self.event,)


@dataclass(frozen=True)
class WithinWindow(Outcome):
    """Rests on the events ``within`` the window that brought their count to the threshold,
    recorded as ``counted`` (how many) and ``window_days``."""

    counted: ClassVar[str]
    within: tuple[Event, ...]
    window_days: int

    @property
    def count(self) -> int:
        return len(self.within)

    @property
    def sources(self) -> Sequence[Event]:
        return self.within

    @property
    def facts(self) -> Facts:
        return {self.counted: self.count, "window_days": self.window_days}


@dataclass(frozen=True)
class OnFinding(OnEvent):
    """Rests on a standing investigation finding: dated by it, about its case."""

    noun = "finding"
    finding: InvestigationFindingReceived

    @property
    def case_id(self) -> str:
        return self.finding.case_id

    @property
    def about(self) -> str:
        return f"case:{self.case_id}"


@dataclass(frozen=True)
class InForceForYears(OnFinding):
    """In force from the finding's day, for ``years``, until ``in_force_until``, because of
    ``categories`` of the finding."""

    categories: tuple[ComplaintCategory, ...]
    years: int
    in_force_until: date

    @property
    def in_force_from(self) -> date:
        return hospital_day(self.finding.occurred_at)

    @property
    def facts(self) -> Facts:
        return {"categories": ",".join(self.categories), "years": self.years}


# --- A staff member ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionBar(InForceForYears):
    """R-PROMO-2Y: no promotion from the finding's day to ``in_force_until``."""

    rule_id = PROMO_2Y
    kind = DecisionKind.PROMOTION_BAR

    @property
    def facts(self) -> Facts:
        return {"finding_date": self.in_force_from, **super().facts}


@dataclass(frozen=True)
class PromotionAllowed(OnEvent):
    """R-PROMO-2Y: an application on a day no bar is in force."""

    noun = "application"
    rule_id = PROMO_2Y
    kind = DecisionKind.PROMOTION_DECISION
    allowed: ClassVar[bool] = True
    application: PromotionApplicationReceived

    @property
    def day(self) -> date:
        return hospital_day(self.application.occurred_at)

    @property
    def about(self) -> str:
        return f"application:{self.application.application_id}"

    @property
    def facts(self) -> Facts:
        return {"application_date": self.day}


@dataclass(frozen=True)
class PromotionRefused(PromotionAllowed):
    """R-PROMO-2Y: an application while ``bar`` is in force."""

    allowed: ClassVar[bool] = False
    bar: PromotionBar

    @property
    def case_id(self) -> str:
        return self.bar.case_id

    @property
    def in_force_until(self) -> date:
        return self.bar.in_force_until

    @property
    def facts(self) -> Facts:
        return {
            "application_date": self.day,
            "case_id": self.case_id,
            "bar_until": self.in_force_until,
        }


@dataclass(frozen=True)
class KickbackReported(OnFinding):
    """R-KICKBACK: reported upward, handled as the confirmed amount's tier says."""

    rule_id = KICKBACK
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.SUPERIOR_HEALTH_AUTHORITY
    suffix = ":report"
    tier: KickbackTier

    @property
    def facts(self) -> Facts:
        return {"amount_cny": self.finding.confirmed_amount_cny, "handling": self.tier.handling_zh}


@dataclass(frozen=True)
class JudicialTransfer(OnFinding):
    """R-KICKBACK: to the judicial organs, the amount at ``threshold`` or over, or a crime
    suspected."""

    rule_id = KICKBACK
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.JUDICIAL_ORGANS
    threshold: Decimal
    over: bool
    """The amount reaches the threshold (else: a crime is suspected)."""
    suffix = ":judicial"

    @property
    def facts(self) -> Facts:
        return {
            "amount_cny": self.finding.confirmed_amount_cny,
            "threshold_cny": self.threshold,
            "suspected_crime": self.finding.suspected_crime,
        }


@dataclass(frozen=True)
class SevereReferral(OnFinding):
    """R-REFER-SEVERE: an improper relationship with severe social impact."""

    rule_id = REFER_SEVERE
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.SUPERIOR_HEALTH_AUTHORITY

    @property
    def facts(self) -> Facts:
        return {"severe_social_impact": True}


@dataclass(frozen=True)
class OutsidePharmacyBreach(OnFinding):
    """R-OUTSIDE-PHARMACY: patients sent to an outside pharmacy without approval."""

    rule_id = OUTSIDE_PHARMACY
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.DEPARTMENT_HEAD

    @property
    def facts(self) -> Facts:
        return {"category": ComplaintCategory.OUTSIDE_PHARMACY}


@dataclass(frozen=True)
class PrescribingMeasure(Outcome):
    """R-PRESCRIBE: a month ranked at the top without justification, the ``count``-th within
    the window."""

    rule_id = PRESCRIBE
    kind = DecisionKind.MEASURE
    month: str
    rankings: tuple[PrescriptionRankingReceived, ...]
    count: int
    measure: Measure
    window_days: int

    @property
    def items(self) -> str:
        return "、".join(sorted({ranking.item_name for ranking in self.rankings}))

    @property
    def about(self) -> str:
        return f"month:{self.month}"

    @property
    def as_of(self) -> datetime:
        return max(ranking.occurred_at for ranking in self.rankings)

    @property
    def sources(self) -> Sequence[Event]:
        return self.rankings

    @property
    def facts(self) -> Facts:
        return {"month": self.month, "times_in_window": self.count, "items": self.items}


@dataclass(frozen=True)
class RepeatedComplaints(WithinWindow, OnEvent):
    """R-REPEAT-COMPLAINT: ``complaint`` brought the count within the window to the threshold."""

    rule_id = REPEAT_COMPLAINT
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.DEPARTMENT_HEAD
    noun = "complaint"
    counted = "complaints"
    complaint: ComplaintReceived


@dataclass(frozen=True)
class SurrenderRecorded(OnEvent):
    """R-SURRENDER: a red envelope handed in within the window, not a breach."""

    rule_id = SURRENDER
    kind = DecisionKind.SURRENDER_RECORDED
    noun = "surrender"
    surrender: RedEnvelopeSurrenderReceived
    window_days: int

    @property
    def facts(self) -> Facts:
        return {
            "amount_cny": self.surrender.amount_cny,
            "received_on": self.surrender.received_on,
            "surrendered_on": self.surrender.surrendered_on,
            "window_days": self.window_days,
        }


# --- A company ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorCutoff(InForceForYears):
    """R-VENDOR-CUTOFF: business with the company cut off until ``in_force_until``."""

    rule_id = VENDOR_CUTOFF
    kind = DecisionKind.VENDOR_CUTOFF


@dataclass(frozen=True)
class RegulatorReferral(OnFinding):
    """R-VENDOR-CUTOFF: the company is referred to the regulator."""

    rule_id = VENDOR_CUTOFF
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.REGULATOR
    suffix = ":regulator"
    categories: tuple[ComplaintCategory, ...]

    @property
    def facts(self) -> Facts:
        return {"categories": ",".join(self.categories)}


@dataclass(frozen=True)
class CutoffLifted(OnFinding):
    """R-VENDOR-CUTOFF: the cut-off ended on ``cut_off_until``; business resumes the day
    after."""

    rule_id = VENDOR_CUTOFF
    kind = DecisionKind.VENDOR_CUTOFF_LIFTED
    suffix = ":lifted"
    cut_off_until: date

    @property
    def in_force_from(self) -> date:
        return self.cut_off_until + timedelta(days=1)

    @property
    def as_of(self) -> datetime:
        # Midnight starting the hospital day, whatever zone the clock is given in.
        return datetime.combine(self.in_force_from, time.min, HOSPITAL_TIME_ZONE)

    @property
    def facts(self) -> Facts:
        return {"cut_off_until": self.cut_off_until}


@dataclass(frozen=True)
class OnVisit(OnEvent):
    """Rests on one visit: dated by its start."""

    noun = "visit"
    visit: VisitorLogReceived

    @property
    def as_of(self) -> datetime:
        return self.visit.started_at


@dataclass(frozen=True)
class RepInClinicalPlace(OnVisit):
    """R-REP-VISIT: a rep in a clinical place on no clinical business, removed at once."""

    rule_id = REP_VISIT
    kind = DecisionKind.REMOVAL_ALERT

    @property
    def facts(self) -> Facts:
        return {"place": self.visit.place_code, "place_kind": self.visit.place_kind}


@dataclass(frozen=True)
class CutOffCompanyVisit(OnVisit):
    """R-VENDOR-CUTOFF: a rep of a company cut off on the visit's day, turned away."""

    rule_id = VENDOR_CUTOFF
    kind = DecisionKind.REMOVAL_ALERT
    suffix = ":cut-off"
    cutoff: VendorCutoff

    @property
    def case_id(self) -> str:
        return self.cutoff.case_id

    @property
    def facts(self) -> Facts:
        return {"cut_off_until": self.cutoff.in_force_until}


@dataclass(frozen=True)
class RepeatedVisitBreaches(WithinWindow, OnVisit):
    """R-REP-REPEAT: ``visit`` brought the breaches within the window to the threshold."""

    rule_id = REP_REPEAT
    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.LEADERSHIP_GROUP
    counted = "breaches"


class VisitBreach(Enum):
    """What a rep visit breaks of 定时定点定人/有预约有流程有记录 (R-REP-VISIT)."""

    NO_APPOINTMENT = "no_appointment"
    NOT_A_VISITING_DAY = "not_a_visiting_day"
    OUTSIDE_HOURS = "outside_hours"
    IN_A_CLINICAL_PLACE = "in_a_clinical_place"
    NOT_AN_ALLOWED_PLACE = "not_an_allowed_place"


# --- A department ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CriticismNotice(OnEvent):
    """R-RECTIFY: a rectification found perfunctory, ineffective or refused."""

    rule_id = RECTIFY
    kind = DecisionKind.NOTICE
    noun = "status"
    status: RectificationStatusReceived

    @property
    def facts(self) -> Facts:
        return {"item": self.status.item, "status": self.status.status}


@dataclass(frozen=True)
class RectificationReportedUpward(WithinWindow, CriticismNotice):
    """R-RECTIFY: ``status`` brought the failures within the window to the threshold."""

    kind = DecisionKind.ESCALATION
    escalate_to = EscalationTarget.SUPERIOR_HEALTH_AUTHORITY
    suffix = ":upward"
    counted = "failures"


# --- A case ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueCase(Outcome):
    """R-EVERY-COMPLAINT: the case had no finding by ``due``; escalated to ``escalate_to``."""

    rule_id = EVERY_COMPLAINT
    kind = DecisionKind.ESCALATION
    case: CaseUpdated
    escalate_to: EscalationTarget
    due: datetime

    @property
    def case_id(self) -> str:
        return self.case.case_id

    @property
    def about(self) -> str:
        return f"case:{self.case_id}:{self.escalate_to}"

    @property
    def as_of(self) -> datetime:
        return self.due

    @property
    def sources(self) -> Sequence[Event]:
        return ()

    @property
    def facts(self) -> Facts:
        return {"deadline": self.case.deadline.isoformat(), "due": self.due.isoformat()}
