"""How escalation says what its rules decide: one sentence in Chinese and one in English for
each outcome (``said``), lead, withdrawal and promotion answer. Every word a decision or a lead
carries is written here; the rules only decide. Pure.
"""

from datetime import date
from functools import singledispatch
from typing import NamedTuple

from schemas.complaint import ComplaintCategory
from schemas.decision import Decision
from schemas.finding import InvestigationFindingReceived
from schemas.rectification import RectificationStatusReceived
from schemas.satisfaction import SatisfactionReceived
from schemas.surrender import RedEnvelopeSurrenderReceived
from schemas.visitor_log import VisitorLogReceived
from services.escalation.outcomes import (
    CriticismNotice,
    CutOffCompanyVisit,
    CutoffLifted,
    JudicialTransfer,
    KickbackReported,
    Outcome,
    OutsidePharmacyBreach,
    OverdueCase,
    PrescribingMeasure,
    PromotionAllowed,
    PromotionBar,
    PromotionRefused,
    RectificationReportedUpward,
    RegulatorReferral,
    RepeatedComplaints,
    RepeatedVisitBreaches,
    RepInClinicalPlace,
    SevereReferral,
    SurrenderRecorded,
    VendorCutoff,
    VisitBreach,
)
from services.escalation.rulebook import RepVisitRule


class Words(NamedTuple):
    zh: str
    en: str


@singledispatch
def said(outcome: Outcome, subject_id: str) -> Words:
    """The sentences of ``outcome``'s decision on the file of ``subject_id``."""
    raise TypeError(f"no wording for {type(outcome).__name__}")


# --- A staff member ----------------------------------------------------------------------------


def _categories(finding: InvestigationFindingReceived) -> str:
    return "、".join(category.label_zh for category in finding.confirmed_categories)


@said.register
def _promotion_bar(bar: PromotionBar, staff: str) -> Words:
    start, until, case = bar.in_force_from, bar.in_force_until, bar.case_id
    return Words(
        f"{staff}因案件{case}于{start}被查实{_categories(bar.finding)}，"
        f"{bar.years}年内（至{until}）不得提职晋级。",
        f"{staff} was found on {start} to have committed {', '.join(bar.categories)} "
        f"(case {case}) and may not be promoted for {bar.years} years, until {until} inclusive.",
    )


@said.register
def _promotion_allowed(allowed: PromotionAllowed, staff: str) -> Words:
    day = allowed.day
    return Words(
        f"{staff}于{day}申请提职晋级，无在期内的禁止记录，准予。",
        f"{staff} applied for promotion on {day} with no bar in force: allowed.",
    )


@said.register
def _promotion_refused(refused: PromotionRefused, staff: str) -> Words:
    day, case, until = refused.day, refused.case_id, refused.in_force_until
    return Words(
        f"{staff}于{day}申请提职晋级，因案件{case}两年内不得提职晋级（至{until}），不予。",
        f"{staff} applied for promotion on {day} while barred by case {case} until {until}: "
        "refused.",
    )


@said.register
def _kickback_reported(report: KickbackReported, staff: str) -> Words:
    amount, tier = report.finding.confirmed_amount_cny, report.tier
    amount_zh = "金额未认定" if amount is None else f"金额{amount}元"
    amount_en = "no amount confirmed" if amount is None else f"{amount} yuan"
    return Words(
        f"案件{report.case_id}查实{staff}收受回扣（{amount_zh}），"
        f"及时上报，按金额处理：{tier.handling_zh}。",
        f"Case {report.case_id}: {staff} took kickbacks ({amount_en}); "
        f"reported upward, handled by amount: {tier.handling_en}.",
    )


@said.register
def _judicial_transfer(transfer: JudicialTransfer, staff: str) -> Words:
    if transfer.over:
        why = Words(
            f"金额达到{transfer.threshold}元", f"the amount reaches {transfer.threshold} yuan"
        )
    else:
        why = Words("涉嫌犯罪", "a crime is suspected")
    return Words(
        f"案件{transfer.case_id}{why.zh}，移送司法机关。",
        f"Case {transfer.case_id} is transferred to the judicial organs: {why.en}.",
    )


@said.register
def _severe_referral(referral: SevereReferral, staff: str) -> Words:
    return Words(
        f"案件{referral.case_id}查实{staff}存在不正当关系且社会影响恶劣，"
        "上报上级卫生行政部门依法依规处理。",
        f"Case {referral.case_id}: an improper relationship with severe social impact is "
        "reported to the superior health authority.",
    )


@said.register
def _outside_pharmacy(breach: OutsidePharmacyBreach, staff: str) -> Words:
    return Words(
        f"案件{breach.case_id}查实{staff}未经科室主任批准并向医务部备案，"
        "安排患者到院外或非定点药店购药，属违规，告知科室负责人。",
        f"Case {breach.case_id}: {staff} sent patients to an outside pharmacy without the "
        "director's approval filed with Medical Affairs, a breach; the department head is told.",
    )


@said.register
def _prescribing_measure(measure: PrescribingMeasure, staff: str) -> Words:
    month, count, window = measure.month, measure.count, measure.window_days
    return Words(
        f"{staff}{month}药品耗材使用排名靠前且无正当理由（{measure.items}），"
        f"{window}日内第{count}次，予以{measure.measure.label_zh}。",
        f"{staff} ranked at the top of use without justification in {month}, "
        f"time {count} within {window} days: {measure.measure}.",
    )


@said.register
def _repeated_complaints(repeated: RepeatedComplaints, staff: str) -> Words:
    count, window = len(repeated.within), repeated.window_days
    return Words(
        f"{window}日内针对{staff}的投诉达{count}件，未待调查结论即上报科室负责人。",
        f"{count} complaints against {staff} within {window} days: "
        "escalated to the department head before any finding.",
    )


@said.register
def _surrender_recorded(recorded: SurrenderRecorded, staff: str) -> Words:
    surrender, window = recorded.surrender, recorded.window_days
    return Words(
        f"{staff}于{surrender.received_on}收到、{surrender.surrendered_on}"
        f"主动上缴红包{surrender.amount_cny}元，在{window}日内，登记为主动上缴，不作违规处理。",
        f"{staff} handed in {surrender.amount_cny} yuan received on {surrender.received_on} "
        f"on {surrender.surrendered_on}, within {window} days: recorded as surrendered, "
        "not as a breach.",
    )


# --- A company ---------------------------------------------------------------------------------


@said.register
def _vendor_cutoff(cutoff: VendorCutoff, company: str) -> Words:
    case, until = cutoff.case_id, cutoff.in_force_until
    return Words(
        f"案件{case}查实{cutoff.finding.company_name}（{company}）存在利益输送，"
        f"切断业务往来至{until}。",
        f"Case {case}: company {company} transferred benefits; "
        f"business with it is cut off until {until} inclusive.",
    )


@said.register
def _regulator_referral(referral: RegulatorReferral, company: str) -> Words:
    case = referral.case_id
    return Words(
        f"案件{case}涉及企业{referral.finding.company_name}（{company}），移交监管部门。",
        f"Case {case}: company {company} is referred to the regulator.",
    )


@said.register
def _cutoff_lifted(lifted: CutoffLifted, company: str) -> Words:
    name, resumes = lifted.finding.company_name, lifted.in_force_from
    return Words(
        f"{name}（{company}）切断业务往来期满，自{resumes}起恢复。",
        f"The cut-off of company {company} ended; business may resume from {resumes}.",
    )


@said.register
def _rep_in_clinical_place(alert: RepInClinicalPlace, company: str) -> Words:
    visit = alert.visit
    return Words(
        f"医药代表{visit.rep_name}（{visit.company_name}）出现在"
        f"{visit.place_kind.label_zh}{visit.place_code}，与诊疗活动无关，立即驱离。",
        f"Rep {visit.rep_id} of {company} is in a {visit.place_kind} ({visit.place_code}) "
        "on no clinical business: remove at once.",
    )


@said.register
def _cut_off_company_visit(alert: CutOffCompanyVisit, company: str) -> Words:
    visit, until = alert.visit, alert.cutoff.in_force_until
    return Words(
        f"{visit.company_name}已被切断业务往来（至{until}），其代表{visit.rep_name}来访，应予拒绝。",
        f"Company {company} is cut off until {until}; its rep {visit.rep_id} must be turned away.",
    )


@said.register
def _repeated_visit_breaches(repeated: RepeatedVisitBreaches, company: str) -> Words:
    count, window = len(repeated.within), repeated.window_days
    return Words(
        f"{repeated.visit.company_name}的医药代表{window}日内违规来访{count}次，上报领导小组。",
        f"Reps of company {company} broke the visiting rules {count} times within {window} "
        "days: escalated to the leadership group.",
    )


# --- A department ------------------------------------------------------------------------------


@said.register
def _criticism_notice(notice: CriticismNotice, department: str) -> Words:
    status = notice.status
    return Words(
        f"{department}整改事项“{status.item}”{status.status.label_zh}，通报批评。",
        f"Department {department}: rectification of {status.item!r} was found "
        f"{status.status}; a criticism notice is issued.",
    )


@said.register
def _rectification_upward(upward: RectificationReportedUpward, department: str) -> Words:
    count, window = len(upward.within), upward.window_days
    return Words(
        f"{department}{window}日内{count}次整改不到位，按上级卫生行政部门的有关规定上报处理。",
        f"Department {department} failed rectification {count} times within {window} days: "
        "reported upward.",
    )


# --- A case ------------------------------------------------------------------------------------


@said.register
def _overdue_case(overdue: OverdueCase, case: str) -> Words:
    target, due = overdue.escalate_to, overdue.due
    return Words(
        f"凡诉必查：案件{case}至{due:%Y-%m-%d %H:%M}仍无调查结论，上报{target.label_zh}。",
        f"Every complaint is investigated: case {case} had no finding by "
        f"{due:%Y-%m-%d %H:%M}; escalated to the {target.replace('_', ' ')}.",
    )


# --- Corrections -------------------------------------------------------------------------------


def withdrawn(decision: Decision) -> Words:
    """A decision published again because the facts it rested on no longer hold."""
    return Words(
        f"撤销：{decision.explanation_zh}（所依据的事实已更正）",
        f"Withdrawn: {decision.explanation_en} (the facts it rested on were corrected)",
    )


# --- Leads -------------------------------------------------------------------------------------


def breach(kind: VisitBreach, visit: VisitorLogReceived, rule: RepVisitRule) -> Words:
    """One thing a visit breaks."""
    hours = f"{rule.allowed_from:%H:%M}–{rule.allowed_until:%H:%M}"
    place = visit.place_kind
    return {
        VisitBreach.NO_APPOINTMENT: Words("无预约", "no appointment"),
        VisitBreach.NOT_A_VISITING_DAY: Words("非接待日", "not on a visiting day"),
        VisitBreach.OUTSIDE_HOURS: Words(
            f"不在接待时间（{hours}）", f"outside visiting hours ({hours})"
        ),
        VisitBreach.IN_A_CLINICAL_PLACE: Words(
            f"出现在{place.label_zh}，应驱离", f"in a {place}: remove"
        ),
        VisitBreach.NOT_AN_ALLOWED_PLACE: Words(
            f"不在指定地点（{place.label_zh}）", "not at an allowed place"
        ),
    }[kind]


def visit_lead(visit: VisitorLogReceived, breaches: list[Words]) -> Words:
    return Words(
        f"医药代表{visit.rep_name}（{visit.company_name}）来访违反“三定三有”："
        f"{'、'.join(zh for zh, _ in breaches)}。",
        f"Rep {visit.rep_id} of company {visit.company_code} visited against the visiting "
        f"rules: {', '.join(en for _, en in breaches)}.",
    )


def satisfaction_lead(
    rating: SatisfactionReceived, category: ComplaintCategory, *, named: bool
) -> Words:
    """``named``: the comment names the category (else the score is low)."""
    reason_zh = f"评价内容涉及“{category.label_zh}”" if named else f"评分{rating.score}分"
    reason_en = f"the comment names {category}" if named else f"the score is {rating.score}"
    return Words(
        f"{rating.touchpoint.label_zh}环节即时满意度评价{reason_zh}，"
        f"作为“{category.label_zh}”线索立案核查。",
        f"A satisfaction rating at {rating.touchpoint} is a lead because {reason_en}; "
        f"a {category} case is opened.",
    )


def rectification_lead(status: RectificationStatusReceived) -> Words:
    return Words(
        f"科室{status.department}整改事项“{status.item}”被认定为{status.status.label_zh}，"
        "立案并予通报批评。",
        f"Department {status.department}'s rectification of {status.item!r} was found "
        f"{status.status}: a case is opened and a criticism notice follows.",
    )


def late_surrender_lead(
    surrender: RedEnvelopeSurrenderReceived, *, days: int, window: int
) -> Words:
    return Words(
        f"{surrender.staff_id}收到红包{days}日后才上缴，超过{window}日，不视为主动上缴，立案核查。",
        f"{surrender.staff_id} handed in a red envelope {days} days after receiving it, "
        f"beyond the {window}-day window: not a voluntary surrender; a case is opened.",
    )


# --- The explain tool --------------------------------------------------------------------------


def promotion_answer(staff: str, day: date, bar: Decision | None) -> Words:
    """May ``staff`` be promoted on ``day``: ``bar`` is the bar in force then, if any."""
    if bar is None:
        return Words(
            f"{staff}于{day}可以提职晋级：无在期内的禁止记录。",
            f"{staff} may be promoted on {day}: no bar is in force.",
        )
    return Words(
        f"{staff}于{day}不得提职晋级：{bar.explanation_zh}",
        f"{staff} may not be promoted on {day}: {bar.explanation_en}",
    )
