"""Escalation's pure rules over conduct files (services/escalation/rules/), the decisions they
make (services/escalation/conduct.py) and how late or revised events correct them.

Thresholds, windows and periods come from the rule book as loaded, so a changed value changes
what is expected with it; where the boundary itself is the point (the seeds' two years, the
design's 30,000 yuan default), the shipped value is pinned in a test of its own. Every row names
the seed passage or rule it checks: 000 = 廉洁从业行动实施方案 (2021–2024), 004 = "小切口"整治
"惠民行动"实施方案 (2023), both in ../shared/seeds/.
"""

import calendar
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.base import HOSPITAL_TIME_ZONE, derive_event_id, hospital_day
from schemas.case import CaseChange, CaseUpdated, derive_case_id
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from schemas.finding import InvestigationFindingReceived, InvestigationFindingSubmission
from schemas.prescription import PrescriptionRankingReceived, PrescriptionRankingSubmission
from schemas.promotion import PromotionApplicationReceived, PromotionApplicationSubmission
from schemas.rectification import (
    RectificationStatus,
    RectificationStatusReceived,
    RectificationStatusSubmission,
)
from schemas.surrender import RedEnvelopeSurrenderReceived, RedEnvelopeSurrenderSubmission
from schemas.visitor_log import PlaceKind, VisitorLogReceived, VisitorLogSubmission
from services.escalation.conduct import (
    ConductFile,
    FileEvent,
    reconcile,
    same_decision,
)
from services.escalation.explain import may_promote
from services.escalation.rulebook import KickbackTier, RuleBook
from services.escalation.rules import depends_on_clock, evaluate
from services.escalation.rules.leads import late_surrender_lead
from services.escalation.settings import EscalationSettings
from services.router.domain import record_finding
from tests.factories import complaint_event, routed_case

RULES_PATH: Path = EscalationSettings().rules
BOOK = RuleBook.from_file(RULES_PATH)

PROMO_2Y = "R-PROMO-2Y"
KICKBACK = "R-KICKBACK"
REFER_SEVERE = "R-REFER-SEVERE"
OUTSIDE_PHARMACY = "R-OUTSIDE-PHARMACY"
VENDOR_CUTOFF = "R-VENDOR-CUTOFF"
REP_VISIT = "R-REP-VISIT"
REP_REPEAT = "R-REP-REPEAT"
PRESCRIBE = "R-PRESCRIBE"
REPEAT_COMPLAINT = "R-REPEAT-COMPLAINT"
SURRENDER = "R-SURRENDER"
RECTIFY = "R-RECTIFY"
EVERY_COMPLAINT = "R-EVERY-COMPLAINT"

STAFF = "S1101"
OTHER_STAFF = "S2207"
COMPANY = "YX-PHARMA-017"
COMPANY_NAME = "云南某医药有限公司"
DEPARTMENT = "OPD-PSY"

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
"""When the rules are applied, unless a test is about the clock."""
CENT = Decimal("0.01")
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- builders --------------------------------------------------------------------------------


def _at(day: date, at: time = time(10, 0)) -> datetime:
    """A moment of ``day`` in hospital time."""
    return datetime.combine(day, at, tzinfo=HOSPITAL_TIME_ZONE)


def _moment(when: date | datetime) -> datetime:
    return when if isinstance(when, datetime) else _at(when)


def _case_id(ref: str) -> str:
    return derive_case_id(derive_event_id("portal", ref))


CASE = _case_id("C-1")
OTHER_CASE = _case_id("C-2")


def _finding(
    when: date | datetime,
    *categories: ComplaintCategory,
    case_id: str = CASE,
    substantiated: bool = True,
    staff_ids: Sequence[str] = (STAFF,),
    amount: Decimal | str | None = None,
    severe: bool = False,
    crime: bool = False,
    company: str | None = None,
    received_at: datetime | None = None,
    ref: str | None = None,
) -> InvestigationFindingReceived:
    """A finding of ``case_id`` recorded at ``when`` confirming ``categories`` (kickback when
    none are given and it is substantiated)."""
    occurred = _moment(when)
    confirmed = (categories or (ComplaintCategory.KICKBACK,)) if substantiated else ()
    payload: dict[str, Any] = {
        "source_system": "discipline",
        "source_ref": ref or f"FINDING-{case_id}-{occurred.isoformat()}",
        "occurred_at": occurred,
        "case_id": case_id,
        "substantiated": substantiated,
        "confirmed_categories": confirmed,
        "staff_ids": tuple(staff_ids),
        "confirmed_amount_cny": amount,
        "severe_social_impact": severe,
        "suspected_crime": crime,
        "company_code": company,
        "company_name": None if company is None else COMPANY_NAME,
        "summary": "经调查核实。" if substantiated else "经调查未查实。",
    }
    return InvestigationFindingReceived.accept(
        InvestigationFindingSubmission.model_validate(payload),
        received_at=received_at or occurred + timedelta(hours=1),
    )


def _application(
    when: date | datetime, application_id: str = "HR-2026-17"
) -> PromotionApplicationReceived:
    occurred = _moment(when)
    payload = {
        "source_system": "hr",
        "source_ref": application_id,
        "occurred_at": occurred,
        "staff_id": STAFF,
        "application_id": application_id,
        "target_position": "副主任医师",
    }
    return PromotionApplicationReceived.accept(
        PromotionApplicationSubmission.model_validate(payload),
        received_at=occurred + timedelta(hours=1),
    )


def _month_start(month: str) -> date:
    return date.fromisoformat(f"{month}-01")


def _month_plus(month: str, months: int) -> str:
    start = _month_start(month)
    index = start.year * 12 + start.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _ranking(
    month: str, *, rank: int = 1, justified: bool = False, item: str = "D-0417"
) -> PrescriptionRankingReceived:
    """A ranking published on the 5th of the month after ``month``."""
    published = _at(_month_start(_month_plus(month, 1)) + timedelta(days=4))
    payload: dict[str, Any] = {
        "source_system": "pharmacy",
        "source_ref": f"RANK-{month}-{STAFF}-{item}",
        "occurred_at": published,
        "staff_id": STAFF,
        "department": DEPARTMENT,
        "item_code": item,
        "item_name": f"注射用药品{item}",
        "item_kind": "drug",
        "month": month,
        "rank": rank,
        "justified": justified,
        "justification": "危重患者集中收治。" if justified else None,
    }
    return PrescriptionRankingReceived.accept(
        PrescriptionRankingSubmission.model_validate(payload),
        received_at=published + timedelta(hours=1),
    )


def _complaint(when: datetime, ref: str) -> ComplaintReceived:
    return complaint_event(
        received_at=when + timedelta(minutes=5),
        source_ref=ref,
        occurred_at=when,
        category="attitude",
        accused_staff_id=STAFF,
        accused_department=DEPARTMENT,
        description="医生态度恶劣。",
        amount_cny=None,
    )


def _surrender(received_on: date, surrendered_on: date) -> RedEnvelopeSurrenderReceived:
    occurred = _at(surrendered_on, time(16, 0))
    payload = {
        "source_system": "finance",
        "source_ref": f"SURRENDER-{received_on}-{surrendered_on}",
        "occurred_at": occurred,
        "staff_id": STAFF,
        "amount_cny": "500.00",
        "received_on": received_on,
        "surrendered_on": surrendered_on,
    }
    return RedEnvelopeSurrenderReceived.accept(
        RedEnvelopeSurrenderSubmission.model_validate(payload),
        received_at=occurred + timedelta(hours=1),
    )


def _visit(
    started_at: datetime,
    ref: str,
    *,
    place_kind: PlaceKind = PlaceKind.RECEPTION_ROOM,
    appointment_id: str | None = "APT-88121",
    company: str = COMPANY,
) -> VisitorLogReceived:
    payload = {
        "source_system": "rep-desk",
        "source_ref": ref,
        "occurred_at": started_at,
        "rep_id": "REP-0417",
        "rep_name": "李明",
        "company_code": company,
        "company_name": COMPANY_NAME,
        "host_staff_id": STAFF,
        "department": DEPARTMENT,
        "place_code": "ADMIN-3F-RECEPTION",
        "place_kind": place_kind,
        "started_at": started_at,
        "appointment_id": appointment_id,
    }
    return VisitorLogReceived.accept(
        VisitorLogSubmission.model_validate(payload),
        received_at=started_at + timedelta(minutes=5),
    )


def _compliant_visit_time(day: date) -> datetime:
    """The middle of the book's visiting hours on ``day``."""
    rule = BOOK.rep_visit
    start = _at(day, rule.allowed_from)
    return start + (_at(day, rule.allowed_until) - start) / 2


def _status(status: RectificationStatus, when: datetime, ref: str) -> RectificationStatusReceived:
    payload = {
        "source_system": "leadership",
        "source_ref": ref,
        "occurred_at": when,
        "department": DEPARTMENT,
        "item": "专家号统揽加价问题整改",
        "status": status,
    }
    return RectificationStatusReceived.accept(
        RectificationStatusSubmission.model_validate(payload),
        received_at=when + timedelta(hours=1),
    )


def _staff(*events: FileEvent) -> ConductFile:
    return ConductFile(subject_kind=SubjectKind.STAFF, subject_id=STAFF, events=events)


def _company(*events: FileEvent) -> ConductFile:
    return ConductFile(subject_kind=SubjectKind.COMPANY, subject_id=COMPANY, events=events)


def _department(*events: FileEvent) -> ConductFile:
    return ConductFile(subject_kind=SubjectKind.DEPARTMENT, subject_id=DEPARTMENT, events=events)


def _case_file(case: CaseUpdated) -> ConductFile:
    return ConductFile(subject_kind=SubjectKind.CASE, subject_id=case.case_id, case=case)


def _of(
    decisions: list[Decision], rule_id: str, kind: DecisionKind | None = None
) -> list[Decision]:
    return [d for d in decisions if d.rule_id == rule_id and (kind is None or d.kind is kind)]


def _keyed(decisions: Sequence[Decision]) -> dict[str, Decision]:
    keyed = {decision.key: decision for decision in decisions}
    assert len(keyed) == len(decisions), "two decisions share a key"
    return keyed


def _only(decisions: list[Decision]) -> Decision:
    assert len(decisions) == 1, decisions
    return decisions[0]


def _anniversary(day: date, years: int) -> date:
    """The same calendar day ``years`` later; a 29 February without one is followed by 1 March
    (the day the same date would be)."""
    if (day.month, day.day) == (2, 29) and not calendar.isleap(day.year + years):
        return date(day.year + years, 3, 1)
    return day.replace(year=day.year + years)


def _spread(count: int, span: timedelta) -> list[timedelta]:
    """``count`` offsets from 0, a day apart, the last exactly ``span`` after the first."""
    assert count >= 2
    assert span > timedelta(days=count - 2)
    return [timedelta(days=i) for i in range(count - 1)] + [span]


# --- R-PROMO-2Y ------------------------------------------------------------------------------
# 004 §五(三): 凡医务人员因医德医风或酒驾和赌博问题被查处的，……两年内不得提职晋级.

PROMO = BOOK.promotion_bar
FINDING_DAY = date(2026, 5, 12)


def _bar_last_day(finding_day: date) -> date:
    return _anniversary(finding_day, PROMO.years) - timedelta(days=1)


def _promotion(file: ConductFile, application_id: str = "HR-2026-17") -> Decision:
    return _keyed(evaluate(file, BOOK, now=NOW))[f"{PROMO_2Y}:application:{application_id}"]


def test_the_shipped_book_bars_promotion_for_two_years_for_every_conduct_category() -> None:
    # 004 §五(三): 医德医风 (every conduct category), 酒驾, 赌博 — for 两年.
    assert PROMO.years == 2
    assert set(PROMO.categories) == set(ComplaintCategory) - {ComplaintCategory.OTHER}
    assert _bar_last_day(FINDING_DAY) == date(2028, 5, 11)


@pytest.mark.parametrize(
    ("application_day", "allowed"),
    [
        # 004 §五(三) 两年内: the bar starts on the finding date, not before.
        pytest.param(lambda found, last: found - timedelta(days=1), True, id="day-before-finding"),
        pytest.param(lambda found, last: found, False, id="finding-day"),
        pytest.param(lambda found, last: found + timedelta(days=200), False, id="inside"),
        # 004 §五(三) 两年内: the last day of the bar is finding date + 2 years − 1 day.
        pytest.param(lambda found, last: last, False, id="last-day-of-bar"),
        pytest.param(lambda found, last: last + timedelta(days=1), True, id="day-after-bar"),
    ],
)
def test_an_application_is_refused_exactly_while_the_two_year_bar_is_in_force(
    application_day: Callable[[date, date], date], allowed: bool
) -> None:
    last = _bar_last_day(FINDING_DAY)
    finding = _finding(FINDING_DAY, ComplaintCategory.RED_ENVELOPE)
    day = application_day(FINDING_DAY, last)

    decisions = evaluate(_staff(finding, _application(day)), BOOK, now=NOW)

    bar = _only(_of(decisions, PROMO_2Y, DecisionKind.PROMOTION_BAR))
    assert bar.key == f"{PROMO_2Y}:case:{CASE}"
    assert bar.case_id == CASE
    assert (bar.in_force_from, bar.in_force_until) == (FINDING_DAY, last)
    assert bar.source_event_ids == (finding.event_id,)
    assert str(last) in bar.explanation_zh
    decision = _only(_of(decisions, PROMO_2Y, DecisionKind.PROMOTION_DECISION))
    assert decision.key == f"{PROMO_2Y}:application:HR-2026-17"
    assert decision.allowed is allowed
    assert decision.facts["application_date"] == str(day)
    if allowed:
        assert decision.case_id is None
        assert decision.in_force_until is None
        assert "准予" in decision.explanation_zh
        assert "allowed" in decision.explanation_en
    else:
        assert decision.case_id == CASE
        assert decision.in_force_until == last
        assert decision.facts["bar_until"] == str(last)
        assert CASE in decision.explanation_zh
        assert str(last) in decision.explanation_zh
        assert "不予" in decision.explanation_zh
        assert CASE in decision.explanation_en
        assert "refused" in decision.explanation_en


@pytest.mark.parametrize("category", list(ComplaintCategory))
def test_a_substantiated_finding_bars_promotion_exactly_for_the_books_categories(
    category: ComplaintCategory,
) -> None:
    # 004 §五(三): 医德医风、酒驾和赌博 bar; "other" (其他) is none of them.
    decisions = evaluate(
        _staff(_finding(FINDING_DAY, category), _application(FINDING_DAY + timedelta(days=30))),
        BOOK,
        now=NOW,
    )

    bars = _of(decisions, PROMO_2Y, DecisionKind.PROMOTION_BAR)
    decision = _only(_of(decisions, PROMO_2Y, DecisionKind.PROMOTION_DECISION))
    if category in PROMO.categories:
        assert _only(bars).facts["categories"] == category
        assert decision.allowed is False
    else:
        assert bars == []
        assert decision.allowed is True


@pytest.mark.parametrize(
    "category",
    [
        # 004 §五(三) names 酒驾 and 赌博 beside 医德医风.
        pytest.param(ComplaintCategory.DRUNK_DRIVING, id="drunk-driving"),
        pytest.param(ComplaintCategory.GAMBLING, id="gambling"),
    ],
)
def test_drunk_driving_and_gambling_bar_promotion(category: ComplaintCategory) -> None:
    assert category in PROMO.categories
    decision = _promotion(
        _staff(_finding(FINDING_DAY, category), _application(FINDING_DAY + timedelta(days=1)))
    )

    assert decision.allowed is False
    assert decision.case_id == CASE


def test_other_alone_does_not_bar_but_beside_a_barred_category_the_bar_names_only_that() -> None:
    # 004 §五(三): only 医德医风, 酒驾 and 赌博 bar promotion.
    assert ComplaintCategory.OTHER not in PROMO.categories
    other = _staff(_finding(FINDING_DAY, ComplaintCategory.OTHER), _application(FINDING_DAY))
    assert _promotion(other).allowed is True

    both = _staff(
        _finding(FINDING_DAY, ComplaintCategory.OTHER, ComplaintCategory.GAMBLING),
        _application(FINDING_DAY),
    )
    bar = _only(_of(evaluate(both, BOOK, now=NOW), PROMO_2Y, DecisionKind.PROMOTION_BAR))
    assert bar.facts["categories"] == ComplaintCategory.GAMBLING


@pytest.mark.parametrize(
    "finding",
    [
        # 004 §五(三) 被查处: a finding that is not substantiated (未查实) bars nothing.
        pytest.param(_finding(FINDING_DAY, substantiated=False), id="not-substantiated"),
        # The finding concerns another staff member only.
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.RED_ENVELOPE, staff_ids=(OTHER_STAFF,)),
            id="another-staff-member",
        ),
    ],
)
def test_a_finding_that_does_not_substantiate_a_breach_by_this_staff_member_bars_nothing(
    finding: InvestigationFindingReceived,
) -> None:
    decisions = evaluate(_staff(finding, _application(FINDING_DAY)), BOOK, now=NOW)

    assert _of(decisions, PROMO_2Y, DecisionKind.PROMOTION_BAR) == []
    assert _only(_of(decisions, PROMO_2Y, DecisionKind.PROMOTION_DECISION)).allowed is True


def test_a_bar_from_29_february_ends_on_28_february_two_years_later() -> None:
    # 004 §五(三) 两年内, from a leap day: the anniversary falls on 1 March, the bar ends the day
    # before.
    leap_day = date(2024, 2, 29)
    last = _bar_last_day(leap_day)
    if not calendar.isleap(leap_day.year + PROMO.years):
        assert last == date(leap_day.year + PROMO.years, 2, 28)
    finding = _finding(leap_day, ComplaintCategory.ATTITUDE)

    on_last = _staff(finding, _application(last))
    after = _staff(finding, _application(last + timedelta(days=1)))

    bar = _only(_of(evaluate(on_last, BOOK, now=NOW), PROMO_2Y, DecisionKind.PROMOTION_BAR))
    assert (bar.in_force_from, bar.in_force_until) == (leap_day, last)
    assert _promotion(on_last).allowed is False
    assert _promotion(after).allowed is True


def test_the_bar_runs_on_hospital_days_of_the_event_times() -> None:
    # 004 §五(三): the finding date is the hospital's date. 17:00 UTC on 1 March is 01:00 on
    # 2 March in Shanghai.
    finding = _finding(datetime(2026, 3, 1, 17, 0, tzinfo=UTC), ComplaintCategory.KICKBACK)
    assert hospital_day(finding.occurred_at) == date(2026, 3, 2)
    last = _bar_last_day(date(2026, 3, 2))

    def decided(applied_at: datetime) -> bool | None:
        return _promotion(_staff(finding, _application(applied_at))).allowed

    bar = _only(_of(evaluate(_staff(finding), BOOK, now=NOW), PROMO_2Y))
    assert bar.in_force_from == date(2026, 3, 2)
    assert bar.in_force_until == last
    # 15:59 UTC on 1 March is 23:59 on 1 March in Shanghai: before the finding date.
    assert decided(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) is True
    # 16:00 UTC on 1 March is midnight on 2 March in Shanghai: the finding date.
    assert decided(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) is False
    last_midnight = datetime.combine(last + timedelta(days=1), time(0), HOSPITAL_TIME_ZONE)
    assert decided(last_midnight - timedelta(minutes=1)) is False
    assert decided(last_midnight.astimezone(UTC)) is True


def test_a_refusal_names_the_bar_that_lasts_longest() -> None:
    # 004 §五(三): the later finding's bar outlasts the earlier one.
    early = _finding(FINDING_DAY, ComplaintCategory.GAMBLING)
    late = _finding(
        FINDING_DAY + timedelta(days=100), ComplaintCategory.DRUNK_DRIVING, case_id=OTHER_CASE
    )
    decision = _promotion(_staff(early, late, _application(FINDING_DAY + timedelta(days=150))))

    assert decision.allowed is False
    assert decision.case_id == OTHER_CASE
    assert decision.in_force_until == _bar_last_day(FINDING_DAY + timedelta(days=100))


def test_may_promote_agrees_with_the_promotion_decisions_on_every_application_day() -> None:
    # 004 §五(三), asked directly by the explain command.
    last = _bar_last_day(FINDING_DAY)
    days = [
        FINDING_DAY - timedelta(days=1),
        FINDING_DAY,
        last,
        last + timedelta(days=1),
        last + timedelta(days=365),
    ]
    finding = _finding(FINDING_DAY, ComplaintCategory.UNREASONABLE_TEST)
    file = _staff(finding, *(_application(day, f"HR-{i}") for i, day in enumerate(days)))
    decisions = _keyed(evaluate(file, BOOK, now=NOW))

    for i, day in enumerate(days):
        decision = decisions[f"{PROMO_2Y}:application:HR-{i}"]
        answer = may_promote(file, BOOK, day, now=NOW)
        assert answer.allowed is decision.allowed, day
        assert (None if answer.bar is None else answer.bar.case_id) == decision.case_id
    assert may_promote(_staff(), BOOK, FINDING_DAY, now=NOW).allowed is True


def test_a_late_finding_corrects_the_allowed_application_and_a_revision_corrects_it_back() -> None:
    # 004 §五(三) with the decision contract (schemas/decision.py): nothing changes silently.
    application = _application(FINDING_DAY + timedelta(days=10))
    finding = _finding(FINDING_DAY, ComplaintCategory.RED_ENVELOPE)
    key = f"{PROMO_2Y}:application:HR-2026-17"
    bar_key = f"{PROMO_2Y}:case:{CASE}"

    first = reconcile({}, evaluate(_staff(application), BOOK, now=NOW), now=NOW)
    allowed = _only(first)
    assert (allowed.key, allowed.allowed, allowed.corrects) == (key, True, None)
    emitted = _keyed(first)

    # The finding arrives after the application: the allowed decision is corrected.
    later = NOW + timedelta(days=1)
    second = _keyed(
        reconcile(emitted, evaluate(_staff(application, finding), BOOK, now=later), now=later)
    )
    assert set(second) == {key, bar_key}
    refusal = second[key]
    assert refusal.corrects == allowed.event_id
    assert refusal.allowed is False
    assert refusal.case_id == CASE
    assert refusal.event_id != allowed.event_id
    assert second[bar_key].corrects is None
    emitted |= second

    # The case's finding is revised: not substantiated after all. The bar is withdrawn and
    # the refusal corrected back to allowed.
    revised = _finding(FINDING_DAY + timedelta(days=40), substantiated=False, staff_ids=())
    file = _staff(application, finding, revised)
    assert file.standing_findings() == [revised]
    latest = later + timedelta(days=1)
    third = _keyed(reconcile(emitted, evaluate(file, BOOK, now=latest), now=latest))
    assert set(third) == {key, bar_key}
    withdrawn = third[bar_key]
    assert withdrawn.withdrawn is True
    assert withdrawn.corrects == second[bar_key].event_id
    assert withdrawn.decided_at == latest
    assert withdrawn.explanation_zh.startswith("撤销")
    assert withdrawn.explanation_en.startswith("Withdrawn")
    reallowed = third[key]
    assert (reallowed.allowed, reallowed.corrects, reallowed.withdrawn) == (
        True,
        refusal.event_id,
        False,
    )
    emitted |= third

    # Nothing more to say the next time the file is evaluated.
    assert reconcile(emitted, evaluate(file, BOOK, now=latest), now=latest) == []


# --- R-KICKBACK ------------------------------------------------------------------------------
# 000 §六(十五): 对核实的输送回扣行为及时上报，对查实收受回扣的医务人员要根据金额从严处罚，涉嫌犯罪
# 的移送司法机关.

KICKBACK_RULE = BOOK.kickback
THRESHOLD = KICKBACK_RULE.judicial_transfer_from_cny
TIERS = KICKBACK_RULE.tiers


def _kickback(
    amount: Decimal | None, *, crime: bool = False, substantiated: bool = True
) -> list[Decision]:
    finding = _finding(FINDING_DAY, amount=amount, crime=crime, substantiated=substantiated)
    return _of(evaluate(_staff(finding), BOOK, now=NOW), KICKBACK)


def test_the_shipped_book_transfers_from_30000_yuan() -> None:
    # DESIGN.md R-KICKBACK: default 30,000 CNY.
    assert Decimal("30000.00") == THRESHOLD
    assert TIERS[0].from_cny == 0


@pytest.mark.parametrize(
    ("amount", "crime", "transferred"),
    [
        # 000 §六(十五) and rules.toml: transfer at the threshold or above.
        pytest.param(THRESHOLD - CENT, False, False, id="a-fen-below-the-threshold"),
        pytest.param(THRESHOLD, False, True, id="exactly-the-threshold"),
        pytest.param(THRESHOLD * 10, False, True, id="far-above-the-threshold"),
        # 000 §六(十五) 涉嫌犯罪的移送司法机关, whatever the amount.
        pytest.param(Decimal("100.00"), True, True, id="suspected-crime-small-amount"),
        pytest.param(None, True, True, id="suspected-crime-no-amount"),
        pytest.param(None, False, False, id="no-amount-no-crime"),
    ],
)
def test_a_kickback_is_transferred_to_the_judicial_organs_at_the_threshold_or_on_crime(
    amount: Decimal | None, crime: bool, transferred: bool
) -> None:
    decisions = _keyed(_kickback(amount, crime=crime))

    judicial = decisions.get(f"{KICKBACK}:case:{CASE}:judicial")
    if not transferred:
        assert judicial is None
        return
    assert judicial is not None
    assert judicial.kind is DecisionKind.ESCALATION
    assert judicial.escalate_to is EscalationTarget.JUDICIAL_ORGANS
    assert judicial.case_id == CASE
    assert judicial.facts["suspected_crime"] == str(crime)
    assert judicial.facts["threshold_cny"] == str(THRESHOLD)
    assert "移送司法机关" in judicial.explanation_zh
    reason = "涉嫌犯罪" if amount is None or amount < THRESHOLD else f"金额达到{THRESHOLD}元"
    assert reason in judicial.explanation_zh


def _tier_rows() -> list[Any]:
    rows = []
    for index, tier in enumerate(TIERS):
        rows.append(pytest.param(tier.from_cny, tier, id=f"tier-{index}-from"))
        if index > 0:
            rows.append(
                pytest.param(tier.from_cny - CENT, TIERS[index - 1], id=f"tier-{index - 1}-to")
            )
    rows.append(pytest.param(THRESHOLD * 100, TIERS[-1], id="far-above-every-tier"))
    # No confirmed amount: the mildest handling, the one from 0 yuan.
    rows.append(pytest.param(None, TIERS[0], id="no-amount-lowest-tier"))
    return rows


@pytest.mark.parametrize(("amount", "tier"), _tier_rows())
def test_a_substantiated_kickback_is_always_reported_upward_handled_by_the_amounts_tier(
    amount: Decimal | None, tier: KickbackTier
) -> None:
    # 000 §六(十五): 及时上报; 根据金额从严处罚.
    report = _keyed(_kickback(amount))[f"{KICKBACK}:case:{CASE}:report"]

    assert report.kind is DecisionKind.ESCALATION
    assert report.escalate_to is EscalationTarget.SUPERIOR_HEALTH_AUTHORITY
    assert report.case_id == CASE
    assert report.facts["handling"] == tier.handling_zh
    assert report.facts["amount_cny"] == str(amount)
    assert tier.handling_zh in report.explanation_zh
    assert tier.handling_en in report.explanation_en
    others = [t for t in TIERS if t != tier]
    assert not any(t.handling_zh in report.explanation_zh for t in others)


@pytest.mark.parametrize(
    "finding",
    [
        # 000 §六(十五) 查实: a kickback not substantiated is neither reported nor transferred.
        pytest.param(
            _finding(FINDING_DAY, substantiated=False, amount=THRESHOLD, crime=True),
            id="not-substantiated",
        ),
        # Not a kickback at all, however large.
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.RED_ENVELOPE, amount=THRESHOLD, crime=True),
            id="a-red-envelope",
        ),
        pytest.param(
            _finding(FINDING_DAY, amount=THRESHOLD, staff_ids=(OTHER_STAFF,)),
            id="another-staff-member",
        ),
    ],
)
def test_only_a_substantiated_kickback_by_this_staff_member_is_reported(
    finding: InvestigationFindingReceived,
) -> None:
    assert _of(evaluate(_staff(finding), BOOK, now=NOW), KICKBACK) == []


# --- R-REFER-SEVERE, R-OUTSIDE-PHARMACY ------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "referred"),
    [
        # 004 §四(三)2: 凡存在医患之间不当行为，造成社会影响恶劣者……上报上级卫生行政部门.
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.IMPROPER_RELATIONSHIP, severe=True),
            True,
            id="improper-relationship-severe",
        ),
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.IMPROPER_RELATIONSHIP),
            False,
            id="improper-relationship-not-severe",
        ),
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.ATTITUDE, severe=True),
            False,
            id="severe-but-not-improper-relationship",
        ),
        pytest.param(
            _finding(FINDING_DAY, substantiated=False, severe=True),
            False,
            id="not-substantiated",
        ),
    ],
)
def test_a_severe_improper_relationship_is_referred_to_the_superior_health_authority(
    finding: InvestigationFindingReceived, referred: bool
) -> None:
    decisions = _of(evaluate(_staff(finding), BOOK, now=NOW), REFER_SEVERE)

    if not referred:
        assert decisions == []
        return
    referral = _only(decisions)
    assert referral.key == f"{REFER_SEVERE}:case:{CASE}"
    assert referral.kind is DecisionKind.ESCALATION
    assert referral.escalate_to is EscalationTarget.SUPERIOR_HEALTH_AUTHORITY
    assert referral.case_id == CASE
    assert "上级卫生行政部门" in referral.explanation_zh


@pytest.mark.parametrize(
    ("finding", "breach"),
    [
        # 004 §四(一)2 集中整治……院外购药.
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.OUTSIDE_PHARMACY), True, id="outside-pharmacy"
        ),
        pytest.param(
            _finding(FINDING_DAY, ComplaintCategory.KICKBACK, ComplaintCategory.OUTSIDE_PHARMACY),
            True,
            id="outside-pharmacy-beside-kickback",
        ),
        pytest.param(_finding(FINDING_DAY, substantiated=False), False, id="not-substantiated"),
        pytest.param(_finding(FINDING_DAY, ComplaintCategory.KICKBACK), False, id="kickback-only"),
    ],
)
def test_a_substantiated_outside_pharmacy_referral_is_escalated_to_the_department_head(
    finding: InvestigationFindingReceived, breach: bool
) -> None:
    decisions = _of(evaluate(_staff(finding), BOOK, now=NOW), OUTSIDE_PHARMACY)

    if not breach:
        assert decisions == []
        return
    escalation = _only(decisions)
    assert escalation.key == f"{OUTSIDE_PHARMACY}:case:{CASE}"
    assert escalation.kind is DecisionKind.ESCALATION
    assert escalation.escalate_to is EscalationTarget.DEPARTMENT_HEAD
    assert escalation.case_id == CASE
    assert escalation.facts["category"] == ComplaintCategory.OUTSIDE_PHARMACY


# --- R-VENDOR-CUTOFF -------------------------------------------------------------------------
# 000 §二: 对查实利益输送的机构或个人，及时向管理部门移送相关线索，并切断业务往来; §六(十二).

CUTOFF = BOOK.vendor_cutoff
CUTOFF_LAST = _anniversary(FINDING_DAY, CUTOFF.years) - timedelta(days=1)


def _cutoff_finding(*categories: ComplaintCategory) -> InvestigationFindingReceived:
    return _finding(FINDING_DAY, *categories, staff_ids=(), company=COMPANY)


@pytest.mark.parametrize("category", list(ComplaintCategory))
def test_a_company_in_a_substantiated_benefit_transfer_is_cut_off_and_referred(
    category: ComplaintCategory,
) -> None:
    # 000 §二 利益输送 (the book's categories): cut off (切断业务往来) and referred (移送).
    finding = _cutoff_finding(category)
    decisions = _keyed(evaluate(_company(finding), BOOK, now=NOW))

    if category not in CUTOFF.categories:
        assert decisions == {}
        return
    cutoff = decisions[f"{VENDOR_CUTOFF}:case:{CASE}"]
    assert cutoff.kind is DecisionKind.VENDOR_CUTOFF
    assert (cutoff.in_force_from, cutoff.in_force_until) == (FINDING_DAY, CUTOFF_LAST)
    assert cutoff.case_id == CASE
    assert str(CUTOFF_LAST) in cutoff.explanation_zh
    referral = decisions[f"{VENDOR_CUTOFF}:case:{CASE}:regulator"]
    assert referral.kind is DecisionKind.ESCALATION
    assert referral.escalate_to is EscalationTarget.REGULATOR
    assert referral.case_id == CASE
    assert set(decisions) == {cutoff.key, referral.key}


def test_the_shipped_book_cuts_off_kickback_procurement_and_red_envelope_companies() -> None:
    # 000 §二 "红包"、回扣 and 004 §四(一) 招采腐败.
    assert set(CUTOFF.categories) == {
        ComplaintCategory.KICKBACK,
        ComplaintCategory.PROCUREMENT,
        ComplaintCategory.RED_ENVELOPE,
    }


@pytest.mark.parametrize(
    "finding",
    [
        pytest.param(
            _finding(FINDING_DAY, substantiated=False, staff_ids=(), company=COMPANY),
            id="not-substantiated",
        ),
        pytest.param(
            _finding(FINDING_DAY, staff_ids=(), company="OTHER-PHARMA-001"),
            id="another-company",
        ),
    ],
)
def test_no_cut_off_without_a_substantiated_finding_against_this_company(
    finding: InvestigationFindingReceived,
) -> None:
    assert evaluate(_company(finding), BOOK, now=NOW) == []


@pytest.mark.parametrize(
    ("visit_day", "flagged"),
    [
        # 000 §二 切断业务往来: from the finding date to the cut-off's last day, inclusive.
        pytest.param(FINDING_DAY - timedelta(days=1), False, id="day-before-finding"),
        pytest.param(FINDING_DAY, True, id="finding-day"),
        pytest.param(CUTOFF_LAST, True, id="last-day"),
        pytest.param(CUTOFF_LAST + timedelta(days=1), False, id="day-after-last"),
    ],
)
def test_a_visit_by_a_cut_off_companys_rep_is_flagged_while_the_cut_off_is_in_force(
    visit_day: date, flagged: bool
) -> None:
    visit = _visit(_compliant_visit_time(visit_day), "VISIT-1")
    decisions = _keyed(evaluate(_company(_cutoff_finding(), visit), BOOK, now=NOW))

    alert = decisions.get(f"{VENDOR_CUTOFF}:visit:{visit.event_id}:cut-off")
    if not flagged:
        assert alert is None
        return
    assert alert is not None
    assert alert.kind is DecisionKind.REMOVAL_ALERT
    assert alert.case_id == CASE
    assert alert.source_event_ids == (visit.event_id,)
    assert alert.facts["cut_off_until"] == str(CUTOFF_LAST)
    assert "拒绝" in alert.explanation_zh


def test_the_cut_off_is_lifted_after_its_last_day_and_the_clock_stops_mattering() -> None:
    # 000 §二 切断业务往来 for the configured years; lifted the day after the last.
    file = _company(_cutoff_finding(ComplaintCategory.PROCUREMENT))
    last_minute = datetime.combine(CUTOFF_LAST, time(23, 59), HOSPITAL_TIME_ZONE)
    lifted_on = CUTOFF_LAST + timedelta(days=1)

    in_force = evaluate(file, BOOK, now=last_minute)
    assert _of(in_force, VENDOR_CUTOFF, DecisionKind.VENDOR_CUTOFF_LIFTED) == []
    assert depends_on_clock(file, in_force) is True

    ended = evaluate(file, BOOK, now=last_minute + timedelta(minutes=1))
    lifted = _only(_of(ended, VENDOR_CUTOFF, DecisionKind.VENDOR_CUTOFF_LIFTED))
    assert lifted.key == f"{VENDOR_CUTOFF}:case:{CASE}:lifted"
    assert lifted.in_force_from == lifted_on
    assert lifted.as_of == datetime.combine(lifted_on, time(0), HOSPITAL_TIME_ZONE)
    assert lifted.facts["cut_off_until"] == str(CUTOFF_LAST)
    # The service's clock is UTC: the decision is the same, lifted at midnight hospital time.
    in_utc = evaluate(file, BOOK, now=(last_minute + timedelta(minutes=1)).astimezone(UTC))
    assert _only(_of(in_utc, VENDOR_CUTOFF, DecisionKind.VENDOR_CUTOFF_LIFTED)).event_id == (
        lifted.event_id
    )
    assert str(lifted_on) in lifted.explanation_zh
    # The cut-off and the referral stay on record.
    assert {d.key for d in in_force} < {d.key for d in ended}
    assert depends_on_clock(file, ended) is False


# --- R-REP-VISIT (removal alert), R-REP-REPEAT -----------------------------------------------
# 000 §六(十五): 定时定点定人、有预约有流程有记录;
# 违规出现在诊疗场所且与诊疗活动无关的人员要及时驱离.

VISIT_DAY = date(2026, 11, 23)


@pytest.mark.parametrize("place_kind", list(PlaceKind))
def test_a_rep_in_a_clinical_place_raises_an_immediate_removal_alert(place_kind: PlaceKind) -> None:
    visit = _visit(_compliant_visit_time(VISIT_DAY), "VISIT-1", place_kind=place_kind)

    decisions = _of(evaluate(_company(visit), BOOK, now=NOW), REP_VISIT)

    if place_kind not in BOOK.rep_visit.clinical_place_kinds:
        assert decisions == []
        return
    alert = _only(decisions)
    assert alert.key == f"{REP_VISIT}:visit:{visit.event_id}"
    assert alert.kind is DecisionKind.REMOVAL_ALERT
    assert alert.facts["place_kind"] == place_kind
    assert "驱离" in alert.explanation_zh


def test_the_shipped_book_removes_reps_from_clinical_areas_and_wards_not_reception_rooms() -> None:
    assert PlaceKind.CLINICAL_AREA in BOOK.rep_visit.clinical_place_kinds
    assert PlaceKind.WARD in BOOK.rep_visit.clinical_place_kinds
    assert PlaceKind.RECEPTION_ROOM not in BOOK.rep_visit.clinical_place_kinds


REP_REPEAT_RULE = BOOK.rep_repeat
REP_WINDOW = timedelta(days=REP_REPEAT_RULE.window_days)


def test_the_shipped_book_escalates_a_third_visit_breach_within_90_days() -> None:
    # DESIGN.md R-REP-REPEAT: 3 or more in 90 days.
    assert (REP_REPEAT_RULE.at, REP_REPEAT_RULE.window_days) == (3, 90)


def _rep_repeat_rows() -> list[Any]:
    at = REP_REPEAT_RULE.at
    return [
        # R-REP-REPEAT (derived from 000 §六(十五)): fewer than `at` breaches are not escalated.
        pytest.param(_spread(at - 1, REP_WINDOW), (), None, id="one-short-inside"),
        # The `at`-th breach exactly window_days after the first is inside.
        pytest.param(_spread(at, REP_WINDOW), (), at - 1, id="at-exactly-window-apart"),
        pytest.param(
            _spread(at, REP_WINDOW + timedelta(days=1)), (), None, id="at-a-day-past-window"
        ),
        pytest.param(
            _spread(at, REP_WINDOW + timedelta(seconds=1)), (), None, id="at-a-second-past-window"
        ),
        # A visit that keeps the rules does not count.
        pytest.param(
            _spread(at - 1, REP_WINDOW),
            (timedelta(days=1, hours=1),),
            None,
            id="one-short-and-a-compliant-visit",
        ),
        # Past the threshold, the escalation stays with the breach that reached it.
        pytest.param(
            [*_spread(at, REP_WINDOW - timedelta(days=1)), REP_WINDOW],
            (),
            at - 1,
            id="one-more-inside",
        ),
    ]


@pytest.mark.parametrize(("breaches", "compliant", "escalated_at"), _rep_repeat_rows())
def test_a_company_is_escalated_at_the_breach_that_reaches_the_count_within_the_window(
    breaches: list[timedelta], compliant: tuple[timedelta, ...], escalated_at: int | None
) -> None:
    start = _compliant_visit_time(VISIT_DAY)
    breaching = [
        _visit(start + offset, f"VISIT-B{i}", appointment_id=None)
        for i, offset in enumerate(breaches)
    ]
    keeping = [_visit(start + offset, f"VISIT-K{i}") for i, offset in enumerate(compliant)]

    decisions = _of(evaluate(_company(*breaching, *keeping), BOOK, now=NOW), REP_REPEAT)

    if escalated_at is None:
        assert decisions == []
        return
    escalation = _only(decisions)
    reaching = breaching[escalated_at]
    assert escalation.key == f"{REP_REPEAT}:visit:{reaching.event_id}"
    assert escalation.kind is DecisionKind.ESCALATION
    assert escalation.escalate_to is EscalationTarget.LEADERSHIP_GROUP
    assert escalation.as_of == reaching.started_at
    assert escalation.facts["breaches"] == str(REP_REPEAT_RULE.at)
    assert set(escalation.source_event_ids) == {v.event_id for v in breaching[: escalated_at + 1]}


# --- R-PRESCRIBE -----------------------------------------------------------------------------
# 000 §六(十四): 药品耗材使用情况排名靠前且无正当理由的……约谈、调岗、核减绩效或暂停执业.

PRESCRIBE_RULE = BOOK.prescribe
FIRST_MONTH = "2025-03"


def _last_month_inside(month: str) -> str:
    """The latest month whose first day is within the window of ``month``'s first day."""
    n = 0
    window = timedelta(days=PRESCRIBE_RULE.window_days)
    while _month_start(_month_plus(month, n + 1)) - _month_start(month) <= window:
        n += 1
    return _month_plus(month, n)


LAST_INSIDE = _last_month_inside(FIRST_MONTH)
FIRST_OUTSIDE = _month_plus(LAST_INSIDE, 1)


def _measures(*rankings: PrescriptionRankingReceived) -> dict[str, Measure | None]:
    return {
        d.facts["month"]: d.measure
        for d in _of(evaluate(_staff(*rankings), BOOK, now=NOW), PRESCRIBE)
    }


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        # 000 §六(十四) and rules.toml: 1st 约谈, 2nd 调岗/核减绩效, 3rd and later 暂停执业.
        pytest.param(1, [Measure.INTERVIEW], id="first"),
        pytest.param(2, [Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT], id="second"),
        pytest.param(
            3,
            [Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT, Measure.SUSPENSION],
            id="third",
        ),
        pytest.param(
            4,
            [
                Measure.INTERVIEW,
                Measure.REASSIGNMENT_OR_PAY_CUT,
                Measure.SUSPENSION,
                Measure.SUSPENSION,
            ],
            id="fourth",
        ),
    ],
)
def test_unjustified_top_ranked_months_get_graded_measures(
    months: int, expected: list[Measure]
) -> None:
    ranked = [_month_plus(FIRST_MONTH, n) for n in range(months)]
    decisions = _of(evaluate(_staff(*(_ranking(m) for m in ranked)), BOOK, now=NOW), PRESCRIBE)

    assert [d.measure for d in decisions] == expected
    for count, (month, decision) in enumerate(zip(ranked, decisions, strict=True), start=1):
        assert decision.key == f"{PRESCRIBE}:month:{month}"
        assert decision.kind is DecisionKind.MEASURE
        assert decision.facts["times_in_window"] == str(count)
        assert decision.measure is not None
        assert decision.measure.label_zh in decision.explanation_zh


@pytest.mark.parametrize(
    ("ranking", "counts"),
    [
        # 000 §六(十四) 排名靠前: at the book's top rank, not below it.
        pytest.param({"rank": PRESCRIBE_RULE.top_rank}, True, id="rank-at-top-rank"),
        pytest.param({"rank": PRESCRIBE_RULE.top_rank + 1}, False, id="rank-below-top-rank"),
        # 000 §六(十四) 无正当理由: a justified use does not count.
        pytest.param({"rank": 1, "justified": True}, False, id="justified"),
    ],
)
def test_only_unjustified_rankings_at_or_above_the_top_rank_count(
    ranking: dict[str, Any], counts: bool
) -> None:
    second = _month_plus(FIRST_MONTH, 1)

    measures = _measures(_ranking(FIRST_MONTH, **ranking), _ranking(second))

    if counts:
        assert measures == {FIRST_MONTH: Measure.INTERVIEW, second: Measure.REASSIGNMENT_OR_PAY_CUT}
    else:
        assert measures == {second: Measure.INTERVIEW}


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        # rules.toml [prescribe] window_days: the latest month inside the window still counts.
        pytest.param(
            [FIRST_MONTH, LAST_INSIDE],
            [Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT],
            id="last-month-inside",
        ),
        # The first month past it starts over.
        pytest.param(
            [FIRST_MONTH, FIRST_OUTSIDE], [Measure.INTERVIEW, Measure.INTERVIEW], id="outside"
        ),
        # The window slides: the month inside still counts for the one past the first.
        pytest.param(
            [FIRST_MONTH, LAST_INSIDE, FIRST_OUTSIDE],
            [Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT, Measure.REASSIGNMENT_OR_PAY_CUT],
            id="sliding",
        ),
    ],
)
def test_months_outside_the_window_do_not_count(months: list[str], expected: list[Measure]) -> None:
    assert _measures(*(_ranking(m) for m in months)) == dict(zip(months, expected, strict=True))


def test_two_items_in_one_month_count_once() -> None:
    # 000 §六(十四): measures by the times ranked, not by the items.
    first = _ranking(FIRST_MONTH, item="D-0417")
    second = _ranking(FIRST_MONTH, item="C-0033", rank=PRESCRIBE_RULE.top_rank)
    next_month = _ranking(_month_plus(FIRST_MONTH, 1))

    decisions = _of(evaluate(_staff(first, second, next_month), BOOK, now=NOW), PRESCRIBE)

    assert [d.measure for d in decisions] == [Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT]
    assert set(decisions[0].source_event_ids) == {first.event_id, second.event_id}
    assert decisions[0].facts["items"] == "、".join(sorted([first.item_name, second.item_name]))


# --- R-REPEAT-COMPLAINT ----------------------------------------------------------------------

REPEAT_RULE = BOOK.repeat_complaint
REPEAT_WINDOW = timedelta(days=REPEAT_RULE.window_days)
COMPLAINT_START = _at(date(2026, 8, 3), time(9, 30))


def test_the_shipped_book_escalates_a_third_complaint_within_90_days() -> None:
    # DESIGN.md R-REPEAT-COMPLAINT: 3 or more in 90 days.
    assert (REPEAT_RULE.at, REPEAT_RULE.window_days) == (3, 90)


@pytest.mark.parametrize(
    ("offsets", "escalated_at"),
    [
        # R-REPEAT-COMPLAINT (derived): one short of the count is not escalated.
        pytest.param(_spread(REPEAT_RULE.at - 1, REPEAT_WINDOW), None, id="one-short"),
        # The complaint reaching the count exactly window_days after the first is inside.
        pytest.param(_spread(REPEAT_RULE.at, REPEAT_WINDOW), REPEAT_RULE.at - 1, id="exactly"),
        pytest.param(
            _spread(REPEAT_RULE.at, REPEAT_WINDOW + timedelta(days=1)), None, id="a-day-past"
        ),
        pytest.param(
            _spread(REPEAT_RULE.at, REPEAT_WINDOW + timedelta(seconds=1)),
            None,
            id="a-second-past",
        ),
        # One more inside: escalated once, at the complaint that reached the count.
        pytest.param(
            [*_spread(REPEAT_RULE.at, REPEAT_WINDOW - timedelta(days=1)), REPEAT_WINDOW],
            REPEAT_RULE.at - 1,
            id="one-more",
        ),
    ],
)
def test_complaints_against_a_staff_member_are_escalated_at_the_one_reaching_the_count(
    offsets: list[timedelta], escalated_at: int | None
) -> None:
    complaints = [_complaint(COMPLAINT_START + o, f"CMP-{i}") for i, o in enumerate(offsets)]

    decisions = _of(evaluate(_staff(*complaints), BOOK, now=NOW), REPEAT_COMPLAINT)

    if escalated_at is None:
        assert decisions == []
        return
    escalation = _only(decisions)
    reaching = complaints[escalated_at]
    assert escalation.key == f"{REPEAT_COMPLAINT}:complaint:{reaching.event_id}"
    assert escalation.escalate_to is EscalationTarget.DEPARTMENT_HEAD
    assert escalation.as_of == reaching.occurred_at
    assert escalation.facts["complaints"] == str(REPEAT_RULE.at)
    assert set(escalation.source_event_ids) == {c.event_id for c in complaints[: escalated_at + 1]}


# --- R-SURRENDER -----------------------------------------------------------------------------
# 000 §四(七): "红包"、回扣主动上缴.

SURRENDER_DAYS = BOOK.surrender.window_days
RECEIVED_ON = date(2026, 10, 9)


@pytest.mark.parametrize(
    ("days", "recorded"),
    [
        pytest.param(0, True, id="same-day"),
        pytest.param(SURRENDER_DAYS, True, id="exactly-window-days"),
        pytest.param(SURRENDER_DAYS + 1, False, id="a-day-late"),
    ],
)
def test_a_red_envelope_handed_in_within_the_window_is_recorded_as_surrendered(
    days: int, recorded: bool
) -> None:
    surrender = _surrender(RECEIVED_ON, RECEIVED_ON + timedelta(days=days))

    decisions = _of(evaluate(_staff(surrender), BOOK, now=NOW), SURRENDER)

    if recorded:
        decision = _only(decisions)
        assert decision.key == f"{SURRENDER}:surrender:{surrender.event_id}"
        assert decision.kind is DecisionKind.SURRENDER_RECORDED
        assert decision.facts["window_days"] == str(SURRENDER_DAYS)
        assert "主动上缴" in decision.explanation_zh
        assert late_surrender_lead(surrender, BOOK) is None
    else:
        assert decisions == []
        lead = late_surrender_lead(surrender, BOOK)
        assert lead is not None
        assert lead.category is ComplaintCategory.RED_ENVELOPE
        assert lead.accused_staff_id == STAFF


# --- R-RECTIFY -------------------------------------------------------------------------------
# 004 §七(二): 对敷衍整改、整治不力、拒不整改的，将进行通报批评.

RECTIFY_RULE = BOOK.rectify
RECTIFY_WINDOW = timedelta(days=RECTIFY_RULE.window_days)
RECTIFY_START = _at(date(2026, 1, 15), time(17, 0))


@pytest.mark.parametrize("status", list(RectificationStatus))
def test_each_failing_rectification_earns_a_criticism_notice(status: RectificationStatus) -> None:
    event = _status(status, RECTIFY_START, "RECT-1")

    decisions = evaluate(_department(event), BOOK, now=NOW)

    if status not in RECTIFY_RULE.opens_case:
        assert decisions == []
        return
    notice = _only(decisions)
    assert notice.key == f"{RECTIFY}:status:{event.event_id}"
    assert notice.kind is DecisionKind.NOTICE
    assert notice.facts["status"] == status
    assert status.label_zh in notice.explanation_zh
    assert "通报批评" in notice.explanation_zh


def test_the_shipped_book_reports_a_second_failure_within_a_year_upward() -> None:
    assert (RECTIFY_RULE.report_upward_at, RECTIFY_RULE.window_days) == (2, 365)
    assert RectificationStatus.DONE not in RECTIFY_RULE.opens_case


@pytest.mark.parametrize(
    ("offsets", "escalated_at"),
    [
        # 004 §七(二): one failure short of report_upward_at earns only notices.
        *(
            [pytest.param([timedelta(0)], None, id="once")]
            if RECTIFY_RULE.report_upward_at == 2
            else [pytest.param(_spread(RECTIFY_RULE.report_upward_at - 1, RECTIFY_WINDOW), None)]
        ),
        # The failure reaching report_upward_at exactly window_days after the first: upward.
        pytest.param(
            _spread(RECTIFY_RULE.report_upward_at, RECTIFY_WINDOW),
            RECTIFY_RULE.report_upward_at - 1,
            id="exactly-window-apart",
        ),
        pytest.param(
            _spread(RECTIFY_RULE.report_upward_at, RECTIFY_WINDOW + timedelta(days=1)),
            None,
            id="a-day-past-window",
        ),
        # One more failure inside: reported once, at the failure that reached the count.
        pytest.param(
            [
                *_spread(RECTIFY_RULE.report_upward_at, RECTIFY_WINDOW - timedelta(days=1)),
                RECTIFY_WINDOW,
            ],
            RECTIFY_RULE.report_upward_at - 1,
            id="one-more-inside",
        ),
    ],
)
def test_the_failure_that_reaches_the_count_within_the_window_is_reported_upward(
    offsets: list[timedelta], escalated_at: int | None
) -> None:
    failing = RECTIFY_RULE.opens_case
    events = [
        _status(failing[i % len(failing)], RECTIFY_START + o, f"RECT-{i}")
        for i, o in enumerate(offsets)
    ]
    done = _status(RectificationStatus.DONE, RECTIFY_START + timedelta(hours=2), "RECT-DONE")

    decisions = evaluate(_department(*events, done), BOOK, now=NOW)

    notices = _of(decisions, RECTIFY, DecisionKind.NOTICE)
    assert [n.key for n in notices] == [f"{RECTIFY}:status:{e.event_id}" for e in events]
    upward = _of(decisions, RECTIFY, DecisionKind.ESCALATION)
    if escalated_at is None:
        assert upward == []
        return
    escalation = _only(upward)
    assert escalation.key == f"{RECTIFY}:status:{events[escalated_at].event_id}:upward"
    assert escalation.escalate_to is EscalationTarget.SUPERIOR_HEALTH_AUTHORITY
    assert escalation.facts["failures"] == str(RECTIFY_RULE.report_upward_at)
    assert set(escalation.source_event_ids) == {e.event_id for e in events[: escalated_at + 1]}


# --- R-EVERY-COMPLAINT -----------------------------------------------------------------------
# 004 §四(三)1: 凡诉必查. Past the deadline to the department head, and later to the leadership
# group.

LEADERSHIP_AFTER = timedelta(days=BOOK.every_complaint.leadership_after_days)
ROUTED = routed_case(complaint_event(source_ref="EC-1", accused_staff_id=STAFF))
DEADLINE = ROUTED.deadline
HEAD = f"{EVERY_COMPLAINT}:case:{ROUTED.case_id}:{EscalationTarget.DEPARTMENT_HEAD}"
LEADERSHIP = f"{EVERY_COMPLAINT}:case:{ROUTED.case_id}:{EscalationTarget.LEADERSHIP_GROUP}"


def _with_finding(at: datetime) -> CaseUpdated:
    finding = _finding(at, case_id=ROUTED.case_id)
    return record_finding(ROUTED, finding, now=at + timedelta(minutes=1))


def test_the_shipped_book_escalates_to_the_leadership_group_seven_days_after_the_head() -> None:
    # DESIGN.md R-EVERY-COMPLAINT: "and 7 days later to the leadership group".
    assert timedelta(days=7) == LEADERSHIP_AFTER


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 004 §四(三)1 凡诉必查: a case within its deadline is not overdue.
        pytest.param(DEADLINE - timedelta(seconds=1), set(), id="before-deadline"),
        pytest.param(DEADLINE, set(), id="at-deadline"),
        pytest.param(DEADLINE + timedelta(seconds=1), {HEAD}, id="just-after-deadline"),
        pytest.param(DEADLINE + LEADERSHIP_AFTER, {HEAD}, id="at-leadership-due"),
        pytest.param(
            DEADLINE + LEADERSHIP_AFTER + timedelta(seconds=1),
            {HEAD, LEADERSHIP},
            id="just-after-leadership-due",
        ),
    ],
)
def test_a_case_without_a_finding_escalates_past_its_deadline(
    now: datetime, expected: set[str]
) -> None:
    file = _case_file(ROUTED)

    decisions = _keyed(evaluate(file, BOOK, now=now))

    assert set(decisions) == expected
    for key, due, target in (
        (HEAD, DEADLINE, EscalationTarget.DEPARTMENT_HEAD),
        (LEADERSHIP, DEADLINE + LEADERSHIP_AFTER, EscalationTarget.LEADERSHIP_GROUP),
    ):
        if key in decisions:
            decision = decisions[key]
            assert decision.escalate_to is target
            assert decision.case_id == ROUTED.case_id
            assert decision.as_of == due
            assert target.label_zh in decision.explanation_zh
    assert depends_on_clock(file, list(decisions.values())) is True


@pytest.mark.parametrize(
    ("found_at", "expected"),
    [
        # 004 §四(三)1: investigated in time, never escalated.
        pytest.param(DEADLINE - timedelta(hours=1), set(), id="finding-before-deadline"),
        pytest.param(DEADLINE, set(), id="finding-at-deadline"),
        # Overdue all the same: the head's escalation stays, the leadership's never comes.
        pytest.param(DEADLINE + timedelta(hours=1), {HEAD}, id="finding-after-deadline"),
        pytest.param(
            DEADLINE + LEADERSHIP_AFTER + timedelta(hours=1),
            {HEAD, LEADERSHIP},
            id="finding-after-leadership-due",
        ),
    ],
)
def test_a_recorded_finding_settles_what_the_case_was_ever_escalated_for(
    found_at: datetime, expected: set[str]
) -> None:
    case = _with_finding(found_at)
    assert case.history[-1].change is CaseChange.FINDING_RECORDED
    file = _case_file(case)

    for now in (found_at + timedelta(minutes=1), DEADLINE + LEADERSHIP_AFTER * 10):
        decisions = evaluate(file, BOOK, now=now)
        assert {d.key for d in decisions} == expected
        assert depends_on_clock(file, decisions) is False


def test_a_head_escalation_is_not_withdrawn_when_the_finding_comes_late() -> None:
    # 004 §四(三)1, and cases.py: a case that got its finding late was overdue all the same.
    overdue_at = DEADLINE + timedelta(hours=1)
    emitted = _keyed(reconcile({}, evaluate(_case_file(ROUTED), BOOK, now=overdue_at), now=NOW))
    assert set(emitted) == {HEAD}

    later = DEADLINE + LEADERSHIP_AFTER * 3
    found = _case_file(_with_finding(DEADLINE + timedelta(hours=2)))

    assert reconcile(emitted, evaluate(found, BOOK, now=later), now=later) == []


# --- decisions -------------------------------------------------------------------------------


def _staff_events() -> list[FileEvent]:
    """A staff member's file touching every staff rule, with a revised finding."""
    start = _at(date(2026, 2, 2), time(9, 0))
    return [
        _finding(FINDING_DAY, ComplaintCategory.KICKBACK, amount=THRESHOLD, crime=True),
        # The first finding of the other case, revised by the second.
        _finding(FINDING_DAY, ComplaintCategory.ATTITUDE, case_id=OTHER_CASE),
        _finding(
            FINDING_DAY + timedelta(days=3),
            ComplaintCategory.IMPROPER_RELATIONSHIP,
            ComplaintCategory.OUTSIDE_PHARMACY,
            case_id=OTHER_CASE,
            severe=True,
        ),
        # Two findings of one case recorded and received at the same moments: which stands
        # is settled by event id, not by arrival order.
        *(
            _finding(
                FINDING_DAY + timedelta(days=5),
                case_id=_case_id("C-3"),
                amount=amount,
                received_at=_at(FINDING_DAY + timedelta(days=5), time(12, 0)),
                ref=f"FINDING-TIE-{amount}",
            )
            for amount in ("100.00", "20000.00")
        ),
        _application(FINDING_DAY - timedelta(days=2), "HR-1"),
        _application(FINDING_DAY + timedelta(days=2), "HR-2"),
        _ranking("2026-01"),
        _ranking("2026-01", item="C-0033"),
        _ranking("2026-02"),
        _ranking("2026-04", justified=True),
        _ranking("2026-05"),
        *(_complaint(start + timedelta(days=10 * i), f"CMP-{i}") for i in range(4)),
        _surrender(date(2026, 3, 1), date(2026, 3, 2)),
        _surrender(date(2026, 3, 1), date(2026, 3, 20)),
    ]


def _company_events() -> list[FileEvent]:
    start = _compliant_visit_time(FINDING_DAY + timedelta(days=6))
    return [
        _cutoff_finding(ComplaintCategory.KICKBACK),
        _visit(start - timedelta(days=30), "VISIT-0"),
        _visit(start, "VISIT-1", place_kind=PlaceKind.WARD, appointment_id=None),
        _visit(start + timedelta(days=1), "VISIT-2", appointment_id=None),
        _visit(start + timedelta(days=2), "VISIT-3", appointment_id=None),
    ]


def _department_events() -> list[FileEvent]:
    return [
        _status(RectificationStatus.PERFUNCTORY, RECTIFY_START, "RECT-1"),
        _status(RectificationStatus.DONE, RECTIFY_START + timedelta(days=1), "RECT-2"),
        _status(RectificationStatus.REFUSED, RECTIFY_START + timedelta(days=60), "RECT-3"),
    ]


def _all_files() -> list[ConductFile]:
    return [
        _staff(*_staff_events()),
        _company(*_company_events()),
        _department(*_department_events()),
        _case_file(ROUTED),
    ]


LATE = datetime(2040, 1, 1, 0, 0, tzinfo=UTC)
"""Past every clock the files above depend on: cases overdue, cut-offs lifted."""


def test_every_decision_names_its_rule_version_facts_and_why_in_chinese_and_english() -> None:
    # DESIGN.md: every escalation names its rule and a human-readable explanation of why.
    seen = set()
    for file in _all_files():
        event_ids = {event.event_id for event in file.events}
        for decision in evaluate(file, BOOK, now=LATE):
            seen.add(decision.rule_id)
            assert decision.key.startswith(f"{decision.rule_id}:")
            assert decision.rules_version == BOOK.version
            assert (decision.subject_kind, decision.subject_id) == (
                file.subject_kind,
                file.subject_id,
            )
            assert decision.explanation_zh.strip()
            assert CJK.search(decision.explanation_zh), decision.explanation_zh
            assert decision.explanation_en.strip()
            assert re.search("[A-Za-z]{3,}", decision.explanation_en), decision.explanation_en
            assert decision.facts
            assert set(decision.source_event_ids) <= event_ids
            assert decision.decided_at == LATE
            assert (decision.corrects, decision.withdrawn) == (None, False)
    assert seen == {
        PROMO_2Y,
        KICKBACK,
        REFER_SEVERE,
        OUTSIDE_PHARMACY,
        PRESCRIBE,
        REPEAT_COMPLAINT,
        SURRENDER,
        VENDOR_CUTOFF,
        REP_VISIT,
        REP_REPEAT,
        RECTIFY,
        EVERY_COMPLAINT,
    }


@pytest.mark.parametrize(
    "later",
    [
        pytest.param(LATE + timedelta(days=400), id="a-year-later"),
        pytest.param(LATE.astimezone(HOSPITAL_TIME_ZONE), id="same-instant-hospital-time"),
        pytest.param(LATE.astimezone(HOSPITAL_TIME_ZONE) + timedelta(hours=5), id="later-hospital"),
    ],
)
def test_the_same_file_gives_the_same_decision_ids_whenever_it_is_evaluated(
    later: datetime,
) -> None:
    for file in _all_files():
        first = evaluate(file, BOOK, now=LATE)
        again = evaluate(file, BOOK, now=later)

        assert [d.event_id for d in first] == [d.event_id for d in again]
        assert all(d.decided_at == later for d in again)


def test_reconcile_publishes_new_decisions_and_nothing_when_nothing_changed() -> None:
    file = _staff(*_staff_events())
    fresh = evaluate(file, BOOK, now=NOW)

    published = reconcile({}, fresh, now=NOW)
    assert published == fresh
    emitted = _keyed(published)

    later = NOW + timedelta(days=30)
    assert reconcile(emitted, evaluate(file, BOOK, now=later), now=later) == []


def test_reconcile_publishes_nothing_for_a_new_rule_book_version_saying_the_same() -> None:
    book = RuleBook.from_toml(
        RULES_PATH.read_text("utf-8").replace('version = "', 'version = "next-', 1),
        source="rules.toml",
    )
    file = _staff(*_staff_events())
    emitted = _keyed(evaluate(file, BOOK, now=NOW))

    fresh = evaluate(file, book, now=NOW)
    assert {d.rules_version for d in fresh} == {book.version} != {BOOK.version}
    assert reconcile(emitted, fresh, now=NOW) == []


def test_reconcile_corrects_a_decision_whose_content_changed() -> None:
    # A revised finding with another amount: the report upward is corrected under its key.
    key = f"{KICKBACK}:case:{CASE}:report"
    first = _finding(FINDING_DAY, amount=TIERS[0].from_cny)
    emitted = _keyed(evaluate(_staff(first), BOOK, now=NOW))
    revised = _finding(FINDING_DAY + timedelta(days=1), amount=TIERS[-1].from_cny)

    fresh = evaluate(_staff(first, revised), BOOK, now=NOW)
    published = _keyed(reconcile(emitted, fresh, now=NOW))

    # The bar's date moved with the revised finding, so it is corrected too.
    assert key in published
    correction = published[key]
    assert correction.corrects == emitted[key].event_id
    assert correction.withdrawn is False
    assert correction.facts["handling"] == TIERS[-1].handling_zh
    assert same_decision(correction, _keyed(fresh)[key])
    assert correction.event_id not in {d.event_id for d in fresh}
    for decision in published.values():
        assert decision.corrects == emitted[decision.key].event_id


def test_reconcile_withdraws_a_vanished_key_once_and_republishes_it_when_it_returns() -> None:
    finding = _finding(FINDING_DAY, ComplaintCategory.OUTSIDE_PHARMACY)
    key = f"{OUTSIDE_PHARMACY}:case:{CASE}"
    emitted = _keyed(evaluate(_staff(finding), BOOK, now=NOW))
    before = emitted[key]
    revised = _finding(FINDING_DAY + timedelta(days=1), substantiated=False)
    cleared = _staff(finding, revised)

    published = _keyed(reconcile(emitted, evaluate(cleared, BOOK, now=NOW), now=NOW))

    assert set(published) == set(emitted)
    withdrawal = published[key]
    assert withdrawal.withdrawn is True
    assert withdrawal.corrects == before.event_id
    assert withdrawal.key == before.key
    assert withdrawal.rule_id == before.rule_id
    assert before.explanation_zh in withdrawal.explanation_zh
    assert before.explanation_en in withdrawal.explanation_en
    emitted |= published

    # Already withdrawn: nothing more.
    assert reconcile(emitted, evaluate(cleared, BOOK, now=NOW), now=NOW) == []

    # The case is revised once more, substantiated again: the decision is published again.
    again = _finding(FINDING_DAY + timedelta(days=2), ComplaintCategory.OUTSIDE_PHARMACY)
    restored = _keyed(
        reconcile(emitted, evaluate(_staff(finding, revised, again), BOOK, now=NOW), now=NOW)
    )
    assert restored[key].withdrawn is False
    assert restored[key].corrects == withdrawal.event_id


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    staff=st.permutations(_staff_events()),
    company=st.permutations(_company_events()),
    department=st.permutations(_department_events()),
)
def test_the_order_the_events_arrive_in_does_not_change_the_decisions(
    staff: list[FileEvent], company: list[FileEvent], department: list[FileEvent]
) -> None:
    for shuffled, original in (
        (_staff(*staff), _staff(*_staff_events())),
        (_company(*company), _company(*_company_events())),
        (_department(*department), _department(*_department_events())),
    ):
        for now in (NOW, LATE):
            expected = evaluate(original, BOOK, now=now)
            decisions = evaluate(shuffled, BOOK, now=now)

            assert [d.event_id for d in decisions] == [d.event_id for d in expected]
            assert all(
                same_decision(one, other) for one, other in zip(decisions, expected, strict=True)
            )
