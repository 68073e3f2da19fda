"""The monthly report (月度工作开展情况, 004 §七(三)): 基本情况, 推进情况, 存在问题, for one
department or the whole hospital, due by the 20th of the next month. Pure.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from pydantic import BaseModel

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.case import CaseKind
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintCategory
from schemas.decision import Decision, DecisionKind
from schemas.kpi import KpiMetric
from schemas.training import TrainingHeldReceived
from services.common.departments import DepartmentCatalogue
from services.reporting.facts import HOSPITAL, CaseFact, CountKey, department_cases
from services.reporting.kpi import KpiStatus, KpiTargets, Observation, Status, kpi_status, rate
from services.reporting.presentation import DepartmentName, department_name
from services.reporting.registers import standing
from services.reporting.study import StudyRule, months_without_study

LABELS_ZH = {
    **{event_type: kind.label_zh for event_type, kind in BY_TYPE.items()},
    "dead_letter": "死信（无法受理或处理的记录）",
}
"""What 基本情况 counts, in Chinese: every event type, and the dead letters (ingest.DEAD_LETTER,
counted under no department), which the hospital's report lists too."""

MEASURE_KINDS = (DecisionKind.MEASURE, DecisionKind.ESCALATION)
"""The decisions 推进情况 counts as measures taken."""

DUE_DAY = 20
"""Reports are due by the 20th of the next month (每月 20 日前报)."""


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first moment of ``month`` and of the next, in hospital time."""
    first = date.fromisoformat(f"{month}-01")
    following = (first + timedelta(days=32)).replace(day=1)
    return (
        datetime.combine(first, time.min, HOSPITAL_TIME_ZONE),
        datetime.combine(following, time.min, HOSPITAL_TIME_ZONE),
    )


def report_due(month: str) -> datetime:
    """The end of the 20th of the month after ``month``, in hospital time."""
    _, following = month_bounds(month)
    return following.replace(day=DUE_DAY) + timedelta(days=1)


class TypeCount(BaseModel):
    event_type: str
    label_zh: str
    count: int


class CategoryCount(BaseModel):
    category: ComplaintCategory
    label_zh: str
    count: int


class Basic(BaseModel):
    """基本情况: what came in this month, by event type and complaint category."""

    total: int
    by_event_type: list[TypeCount]
    complaint_categories: list[CategoryCount]


class Progress(BaseModel):
    """推进情况: the cases opened this month and what became of them."""

    cases_opened: int
    investigated: int
    on_time: int
    closed: int
    measures_taken: int


class OverdueCase(BaseModel):
    case_id: str
    department: str
    department_zh: str
    kind: CaseKind
    deadline: datetime
    days_overdue: int


class Confirmation(BaseModel):
    department: str
    month: str
    confirmed_at: datetime
    confirmed_by: str


class Timeliness(BaseModel):
    department: str
    department_zh: str
    due: datetime
    confirmed_at: datetime | None
    status: str
    """on_time, late, missing (past due, not confirmed) or pending (not due yet)."""
    status_zh: str


_TIMELINESS_ZH = {
    "on_time": "按时报送",
    "late": "逾期报送",
    "missing": "逾期未报",
    "pending": "未到期",
}


class Problems(BaseModel):
    """存在问题."""

    overdue_cases: list[OverdueCase]
    kpi_shortfalls: list[KpiStatus]
    without_study: list[DepartmentName]
    """Departments with no study session this month (R-MONTHLY-STUDY)."""
    reports_not_on_time: list[Timeliness]


class MonthlyReport(BaseModel):
    department: str
    department_zh: str
    month: str
    as_of: datetime
    due: datetime
    basic: Basic
    progress: Progress
    problems: Problems
    kpi: list[KpiStatus]
    timeliness: list[Timeliness]


@dataclass(frozen=True)
class MonthData:
    """What the store holds for one month's report: at least everything the report shows (the
    report selects from it, so more changes nothing)."""

    counts: Sequence[tuple[CountKey, int]]
    cases: Sequence[CaseFact]
    """The cases opened in the month, those that may have been overdue at its end (or now),
    whichever month they came in, and those handling complaints against heads counted in it."""
    decisions: Sequence[Decision]
    """Every version of the measures and escalations (a version stands or is withdrawn)."""
    observations: Sequence[Observation]
    sessions: Sequence[TrainingHeldReceived]
    confirmations: Sequence[Confirmation] = field(default_factory=tuple)


def monthly_report(
    data: MonthData,
    *,
    month: str,
    department: str | None,
    catalogue: DepartmentCatalogue,
    targets: KpiTargets,
    study: StudyRule,
    now: datetime,
) -> MonthlyReport:
    """The report of ``department`` (None: the hospital-wide roll-up) for ``month``.

    One basis throughout: what the hospital received in the month (受理). 基本情况 counts the
    events received in it; 推进情况 follows the cases opened in it (opened when received) and
    what became of them since, measures included, whenever taken."""
    _, end = month_bounds(month)
    as_of = min(now, end)
    departments = [department] if department is not None else sorted(catalogue.departments)
    our_cases = department_cases(data.cases, department, catalogue)
    opened = [case for case in our_cases if case.month == month]
    kpi = _kpi(data, opened, departments, month=month, department=department, targets=targets)
    due = report_due(month)
    confirmations = {(c.department, c.month): c for c in data.confirmations}
    timeliness = [
        _timeliness(code, catalogue, confirmations.get((code, month)), due=due, now=now)
        for code in departments
    ]
    return MonthlyReport(
        department=department or HOSPITAL,
        department_zh="全院" if department is None else catalogue.departments[department].name_zh,
        month=month,
        as_of=as_of,
        due=due,
        basic=_basic(data.counts, month, department, our_cases),
        progress=_progress(opened, data.decisions),
        problems=Problems(
            overdue_cases=_overdue(our_cases, end=end, as_of=as_of),
            kpi_shortfalls=[s for s in kpi if s.status in (Status.SHORTFALL, Status.OUT_OF_SCALE)],
            without_study=[
                department_name(code, catalogue)
                for code in departments
                if months_without_study(
                    [s for s in data.sessions if s.department == code], [month], study
                )
            ],
            reports_not_on_time=[t for t in timeliness if t.status in ("late", "missing")],
        ),
        kpi=kpi,
        timeliness=timeliness,
    )


def _basic(
    counts: Iterable[tuple[CountKey, int]],
    month: str,
    department: str | None,
    our_cases: Iterable[CaseFact],
) -> Basic:
    """基本情况: the events received in ``month`` about ``department`` (all: the hospital)."""
    handled = {event_id for case in our_cases for event_id in case.source_event_ids}

    def ours(key: CountKey) -> bool:
        # A complaint against a department's head counts where its case is handled.
        return department in (None, key.department) or key.complaint_against_head in handled

    by_type: Counter[str] = Counter()
    categories: Counter[ComplaintCategory] = Counter()
    for key, n in counts:
        if key.month != month or not ours(key):
            continue
        by_type[key.event_type] += n
        if key.event_type == "complaint" and key.category is not None:
            categories[key.category] += n
    return Basic(
        total=sum(by_type.values()),
        by_event_type=[
            TypeCount(event_type=t, label_zh=LABELS_ZH.get(t, t), count=n)
            for t, n in sorted(by_type.items(), key=lambda item: (-item[1], item[0]))
        ],
        complaint_categories=[
            CategoryCount(category=c, label_zh=c.label_zh, count=n)
            for c, n in sorted(categories.items(), key=lambda item: (-item[1], item[0]))
        ],
    )


def _progress(opened: Sequence[CaseFact], decisions: Iterable[Decision]) -> Progress:
    """推进情况: the cases opened in the month and what became of them since."""
    opened_ids = {case.case_id for case in opened}
    # Every published version is stored: count the one standing per key, not withdrawn.
    measures = [
        decision
        for decision in standing(decisions)
        if decision.kind in MEASURE_KINDS and decision.case_id in opened_ids
    ]
    return Progress(
        cases_opened=len(opened),
        investigated=sum(case.investigated for case in opened),
        on_time=sum(case.on_time for case in opened),
        closed=sum(case.closed_at is not None for case in opened),
        measures_taken=len(measures),
    )


def _overdue(cases: Iterable[CaseFact], *, end: datetime, as_of: datetime) -> list[OverdueCase]:
    """The cases received by the month's ``end`` that were overdue at ``as_of``."""
    return sorted(
        (
            OverdueCase(
                case_id=case.case_id,
                department=case.department,
                department_zh=case.department_zh,
                kind=case.kind,
                deadline=case.deadline,
                days_overdue=(as_of - case.deadline).days,
            )
            for case in cases
            if case.opened_at < end and case.overdue(as_of)
        ),
        key=lambda case: (case.deadline, case.case_id),
    )


def _kpi(
    data: MonthData,
    opened: Sequence[CaseFact],
    departments: Sequence[str],
    *,
    month: str,
    department: str | None,
    targets: KpiTargets,
) -> list[KpiStatus]:
    """The month's KPI status: observed, or computed from the cases opened in it and the
    study sessions held in it."""
    complaints = [case for case in opened if case.kind is CaseKind.COMPLAINT]
    computed: dict[KpiMetric, Decimal] = {}
    investigation_rate = rate(sum(case.investigated for case in complaints), len(complaints))
    if investigation_rate is not None:
        computed[KpiMetric.COMPLAINT_INVESTIGATION_RATE] = investigation_rate
    coverage = _education_coverage(data.sessions, departments, month)
    if coverage is not None:
        computed[KpiMetric.EDUCATION_COVERAGE] = coverage
    return kpi_status(
        targets, data.observations, scope=department or HOSPITAL, period=month, computed=computed
    )


def _education_coverage(
    sessions: Iterable[TrainingHeldReceived], departments: Sequence[str], month: str
) -> Decimal | None:
    """Staff who attended a session this month over the departments' headcounts."""
    attended: dict[str, set[str]] = {}
    headcount: dict[str, int] = {}
    for session in sorted(sessions, key=lambda s: s.held_on):
        if session.department in departments and session.held_on.strftime("%Y-%m") == month:
            attended.setdefault(session.department, set()).update(session.attendee_ids)
            headcount[session.department] = session.headcount
    return rate(sum(len(staff) for staff in attended.values()), sum(headcount.values()))


def _timeliness(
    code: str,
    catalogue: DepartmentCatalogue,
    confirmation: Confirmation | None,
    *,
    due: datetime,
    now: datetime,
) -> Timeliness:
    if confirmation is not None:
        status = "on_time" if confirmation.confirmed_at < due else "late"
    else:
        status = "missing" if now >= due else "pending"
    entry = catalogue.departments.get(code)
    return Timeliness(
        department=code,
        department_zh=entry.name_zh if entry else code,
        due=due,
        confirmed_at=None if confirmation is None else confirmation.confirmed_at,
        status=status,
        status_zh=_TIMELINESS_ZH[status],
    )
