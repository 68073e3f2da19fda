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
from functools import partial

from schemas.base import hospital_day
from schemas.complaint import ComplaintCategory, ComplaintReceived
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure
from schemas.finding import InvestigationFindingReceived
from schemas.prescription import PrescriptionRankingReceived
from schemas.promotion import PromotionApplicationReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from services.escalation.conduct import ConductFile, decide
from services.escalation.rulebook import RuleBook
from services.escalation.rules.leads import SURRENDER, surrendered_in_time

PROMO_2Y = "R-PROMO-2Y"
KICKBACK = "R-KICKBACK"
REFER_SEVERE = "R-REFER-SEVERE"
OUTSIDE_PHARMACY = "R-OUTSIDE-PHARMACY"
PRESCRIBE = "R-PRESCRIBE"
REPEAT_COMPLAINT = "R-REPEAT-COMPLAINT"


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 1 March."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _categories(finding: InvestigationFindingReceived) -> str:
    return "、".join(category.label_zh for category in finding.confirmed_categories)


def _findings_against(file: ConductFile) -> list[InvestigationFindingReceived]:
    return [
        finding
        for finding in file.standing_findings()
        if finding.substantiated and file.subject_id in finding.staff_ids
    ]


# --- R-PROMO-2Y ---------------------------------------------------------------------------------


def promotion_bars(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    """Each substantiated conduct, drunk-driving or gambling finding bars promotion for the
    configured years from the finding's date."""
    rule = book.promotion_bar
    bars = []
    for finding in _findings_against(file):
        barred_for = [c for c in finding.confirmed_categories if c in rule.categories]
        if not barred_for:
            continue
        start = hospital_day(finding.occurred_at)
        until = add_years(start, rule.years) - timedelta(days=1)
        bars.append(
            decide(
                book,
                rule_id=PROMO_2Y,
                key=f"case:{finding.case_id}",
                kind=DecisionKind.PROMOTION_BAR,
                subject=file,
                case_id=finding.case_id,
                in_force_from=start,
                in_force_until=until,
                as_of=finding.occurred_at,
                sources=[finding],
                facts={
                    "finding_date": start,
                    "categories": ",".join(barred_for),
                    "years": rule.years,
                },
                explanation_zh=(
                    f"{file.subject_id}因案件{finding.case_id}于{start}被查实{_categories(finding)}，"
                    f"{rule.years}年内（至{until}）不得提职晋级。"
                ),
                explanation_en=(
                    f"{file.subject_id} was found on {start} to have committed "
                    f"{', '.join(barred_for)} (case {finding.case_id}) and may not be promoted "
                    f"for {rule.years} years, until {until} inclusive."
                ),
                now=now,
            )
        )
    return bars


def bar_on(bars: list[Decision], day: date) -> Decision | None:
    """The bar in force on ``day`` that lasts longest, if any."""
    in_force = [
        bar
        for bar in bars
        if bar.in_force_from is not None
        and bar.in_force_until is not None
        and bar.in_force_from <= day <= bar.in_force_until
    ]
    return max(in_force, key=lambda bar: (bar.in_force_until, bar.case_id or ""), default=None)


def promotion_decisions(
    file: ConductFile, bars: list[Decision], book: RuleBook, *, now: datetime
) -> list[Decision]:
    """Each application is refused while a bar is in force on its date, naming the case and
    the bar's last day; otherwise allowed."""
    decisions = []
    for application in file.of_type(PromotionApplicationReceived):
        day = hospital_day(application.occurred_at)
        bar = bar_on(bars, day)
        decide_application = partial(
            decide,
            book,
            rule_id=PROMO_2Y,
            key=f"application:{application.application_id}",
            kind=DecisionKind.PROMOTION_DECISION,
            subject=file,
            as_of=application.occurred_at,
            now=now,
        )
        if bar is None:
            decisions.append(
                decide_application(
                    allowed=True,
                    sources=[application],
                    facts={"application_date": day},
                    explanation_zh=f"{file.subject_id}于{day}申请提职晋级，无在期内的禁止记录，准予。",
                    explanation_en=(
                        f"{file.subject_id} applied for promotion on {day} with no bar in force: "
                        "allowed."
                    ),
                )
            )
            continue
        decisions.append(
            decide_application(
                allowed=False,
                case_id=bar.case_id,
                in_force_until=bar.in_force_until,
                sources=[application],
                facts={
                    "application_date": day,
                    "case_id": bar.case_id,
                    "bar_until": bar.in_force_until,
                },
                explanation_zh=(
                    f"{file.subject_id}于{day}申请提职晋级，因案件{bar.case_id}"
                    f"两年内不得提职晋级（至{bar.in_force_until}），不予。"
                ),
                explanation_en=(
                    f"{file.subject_id} applied for promotion on {day} while barred by case "
                    f"{bar.case_id} until {bar.in_force_until}: refused."
                ),
            )
        )
    return decisions


# --- Findings reported upward -------------------------------------------------------------------


def kickback_escalations(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    rule = book.kickback
    decisions = []
    for finding in _findings_against(file):
        if ComplaintCategory.KICKBACK not in finding.confirmed_categories:
            continue
        amount = finding.confirmed_amount_cny
        # No confirmed amount: the tier from 0 yuan (every tier would match None otherwise,
        # and the harshest be taken).
        tier = [t for t in rule.tiers if t.from_cny <= (amount or 0)][-1]
        amount_zh = "金额未认定" if amount is None else f"金额{amount}元"
        amount_en = "no amount confirmed" if amount is None else f"{amount} yuan"
        decisions.append(
            decide(
                book,
                rule_id=KICKBACK,
                key=f"case:{finding.case_id}:report",
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY,
                subject=file,
                case_id=finding.case_id,
                as_of=finding.occurred_at,
                sources=[finding],
                facts={"amount_cny": amount, "handling": tier.handling_zh},
                explanation_zh=(
                    f"案件{finding.case_id}查实{file.subject_id}收受回扣（{amount_zh}），"
                    f"及时上报，按金额处理：{tier.handling_zh}。"
                ),
                explanation_en=(
                    f"Case {finding.case_id}: {file.subject_id} took kickbacks ({amount_en}); "
                    f"reported upward, handled by amount: {tier.handling_en}."
                ),
                now=now,
            )
        )
        over = amount is not None and amount >= rule.judicial_transfer_from_cny
        if not (over or finding.suspected_crime):
            continue
        why_zh = f"金额达到{rule.judicial_transfer_from_cny}元" if over else "涉嫌犯罪"
        why_en = (
            f"the amount reaches {rule.judicial_transfer_from_cny} yuan"
            if over
            else "a crime is suspected"
        )
        decisions.append(
            decide(
                book,
                rule_id=KICKBACK,
                key=f"case:{finding.case_id}:judicial",
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.JUDICIAL_ORGANS,
                subject=file,
                case_id=finding.case_id,
                as_of=finding.occurred_at,
                sources=[finding],
                facts={
                    "amount_cny": amount,
                    "threshold_cny": rule.judicial_transfer_from_cny,
                    "suspected_crime": finding.suspected_crime,
                },
                explanation_zh=f"案件{finding.case_id}{why_zh}，移送司法机关。",
                explanation_en=(
                    f"Case {finding.case_id} is transferred to the judicial organs: {why_en}."
                ),
                now=now,
            )
        )
    return decisions


def severe_referrals(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    return [
        decide(
            book,
            rule_id=REFER_SEVERE,
            key=f"case:{finding.case_id}",
            kind=DecisionKind.ESCALATION,
            escalate_to=EscalationTarget.SUPERIOR_HEALTH_AUTHORITY,
            subject=file,
            case_id=finding.case_id,
            as_of=finding.occurred_at,
            sources=[finding],
            facts={"severe_social_impact": True},
            explanation_zh=(
                f"案件{finding.case_id}查实{file.subject_id}存在不正当关系且社会影响恶劣，"
                "上报上级卫生行政部门依法依规处理。"
            ),
            explanation_en=(
                f"Case {finding.case_id}: an improper relationship with severe social impact is "
                "reported to the superior health authority."
            ),
            now=now,
        )
        for finding in _findings_against(file)
        if ComplaintCategory.IMPROPER_RELATIONSHIP in finding.confirmed_categories
        and finding.severe_social_impact
    ]


def outside_pharmacy_breaches(
    file: ConductFile, book: RuleBook, *, now: datetime
) -> list[Decision]:
    return [
        decide(
            book,
            rule_id=OUTSIDE_PHARMACY,
            key=f"case:{finding.case_id}",
            kind=DecisionKind.ESCALATION,
            escalate_to=EscalationTarget.DEPARTMENT_HEAD,
            subject=file,
            case_id=finding.case_id,
            as_of=finding.occurred_at,
            sources=[finding],
            facts={"category": ComplaintCategory.OUTSIDE_PHARMACY},
            explanation_zh=(
                f"案件{finding.case_id}查实{file.subject_id}未经科室主任批准并向医务部备案，"
                "安排患者到院外或非定点药店购药，属违规，告知科室负责人。"
            ),
            explanation_en=(
                f"Case {finding.case_id}: {file.subject_id} sent patients to an outside pharmacy "
                "without the director's approval filed with Medical Affairs, a breach; the "
                "department head is told."
            ),
            now=now,
        )
        for finding in _findings_against(file)
        if ComplaintCategory.OUTSIDE_PHARMACY in finding.confirmed_categories
    ]


# --- R-PRESCRIBE --------------------------------------------------------------------------------

_GRADES = (Measure.INTERVIEW, Measure.REASSIGNMENT_OR_PAY_CUT, Measure.SUSPENSION)


def prescribing_measures(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    """The 1st month ranked at the top without justification within the window gets an
    interview, the 2nd a reassignment or pay cut, the 3rd and later a suspension."""
    rule = book.prescribe
    by_month: dict[str, list[PrescriptionRankingReceived]] = {}
    for ranking in file.of_type(PrescriptionRankingReceived):
        if not ranking.justified and ranking.rank <= rule.top_rank:
            by_month.setdefault(ranking.month, []).append(ranking)
    months = sorted(by_month)
    decisions = []
    for month in months:
        start = date.fromisoformat(f"{month}-01")
        earlier = [
            m
            for m in months
            if m <= month and start - date.fromisoformat(f"{m}-01") <= timedelta(rule.window_days)
        ]
        count = len(earlier)
        measure = _GRADES[min(count, len(_GRADES)) - 1]
        rankings = by_month[month]
        items = "、".join(sorted({ranking.item_name for ranking in rankings}))
        decisions.append(
            decide(
                book,
                rule_id=PRESCRIBE,
                key=f"month:{month}",
                kind=DecisionKind.MEASURE,
                measure=measure,
                subject=file,
                as_of=max(ranking.occurred_at for ranking in rankings),
                sources=rankings,
                facts={"month": month, "times_in_window": count, "items": items},
                explanation_zh=(
                    f"{file.subject_id}{month}药品耗材使用排名靠前且无正当理由（{items}），"
                    f"{rule.window_days}日内第{count}次，予以{measure.label_zh}。"
                ),
                explanation_en=(
                    f"{file.subject_id} ranked at the top of use without justification in "
                    f"{month}, time {count} within {rule.window_days} days: {measure}."
                ),
                now=now,
            )
        )
    return decisions


# --- R-REPEAT-COMPLAINT -------------------------------------------------------------------------


def repeat_complaints(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    """Escalate at each complaint that brings the count within the window to the threshold."""
    rule = book.repeat_complaint
    window = timedelta(days=rule.window_days)
    complaints = file.of_type(ComplaintReceived)
    decisions = []
    for index, complaint in enumerate(complaints):
        within = [
            c for c in complaints[: index + 1] if complaint.occurred_at - c.occurred_at <= window
        ]
        if len(within) != rule.at:
            continue
        decisions.append(
            decide(
                book,
                rule_id=REPEAT_COMPLAINT,
                key=f"complaint:{complaint.event_id}",
                kind=DecisionKind.ESCALATION,
                escalate_to=EscalationTarget.DEPARTMENT_HEAD,
                subject=file,
                as_of=complaint.occurred_at,
                sources=within,
                facts={"complaints": len(within), "window_days": rule.window_days},
                explanation_zh=(
                    f"{rule.window_days}日内针对{file.subject_id}的投诉达{len(within)}件，"
                    "未待调查结论即上报科室负责人。"
                ),
                explanation_en=(
                    f"{len(within)} complaints against {file.subject_id} within "
                    f"{rule.window_days} days: escalated to the department head before any finding."
                ),
                now=now,
            )
        )
    return decisions


# --- R-SURRENDER --------------------------------------------------------------------------------


def surrenders(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    return [
        decide(
            book,
            rule_id=SURRENDER,
            key=f"surrender:{surrender.event_id}",
            kind=DecisionKind.SURRENDER_RECORDED,
            subject=file,
            as_of=surrender.occurred_at,
            sources=[surrender],
            facts={
                "amount_cny": surrender.amount_cny,
                "received_on": surrender.received_on,
                "surrendered_on": surrender.surrendered_on,
                "window_days": book.surrender.window_days,
            },
            explanation_zh=(
                f"{file.subject_id}于{surrender.received_on}收到、{surrender.surrendered_on}"
                f"主动上缴红包{surrender.amount_cny}元，在{book.surrender.window_days}日内，"
                "登记为主动上缴，不作违规处理。"
            ),
            explanation_en=(
                f"{file.subject_id} handed in {surrender.amount_cny} yuan received on "
                f"{surrender.received_on} on {surrender.surrendered_on}, within "
                f"{book.surrender.window_days} days: recorded as surrendered, not as a breach."
            ),
            now=now,
        )
        for surrender in file.of_type(RedEnvelopeSurrenderReceived)
        if surrendered_in_time(surrender, book)
    ]


def staff_decisions(file: ConductFile, book: RuleBook, *, now: datetime) -> list[Decision]:
    bars = promotion_bars(file, book, now=now)
    return [
        *bars,
        *promotion_decisions(file, bars, book, now=now),
        *kickback_escalations(file, book, now=now),
        *severe_referrals(file, book, now=now),
        *outside_pharmacy_breaches(file, book, now=now),
        *prescribing_measures(file, book, now=now),
        *repeat_complaints(file, book, now=now),
        *surrenders(file, book, now=now),
    ]
