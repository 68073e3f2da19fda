"""HTTP: reports, KPI status and registers as JSON, CSV or XLSX; the monthly report also as a
printable page. Every route needs a report token, or (reading) a person signed in at the desk;
what it shows depends on the role."""

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from schemas.base import HOSPITAL_TIME_ZONE
from services.common.departments import DepartmentCatalogue
from services.common.roles import Role
from services.common.service import wired
from services.reporting import access, presentation, registers
from services.reporting.access import Viewer, ViewerDep
from services.reporting.exports import Column, ExportFormat, table
from services.reporting.facts import HOSPITAL, CaseFact, CaseRecord
from services.reporting.kpi import KpiStatus
from services.reporting.monthly import Confirmation, MonthlyReport
from services.reporting.reports import Reports

logger = logging.getLogger(__name__)

Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
Period = Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")]
Format = Annotated[ExportFormat, Query(description="json, csv or xlsx")]
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def hospital_time(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment as the hospital's clock and calendar show it (moments are kept in UTC)."""
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime(fmt)


def last_day(end: datetime) -> str:
    """The last day before an exclusive end, e.g. 12-20 for "by the end of the 20th"."""
    return hospital_time(end - timedelta(microseconds=1), "%Y-%m-%d")


templates.env.filters["hospital_time"] = hospital_time
templates.env.filters["last_day"] = last_day
templates.env.filters["shown"] = presentation.shown
templates.env.filters["target"] = presentation.target
templates.env.globals["SOURCE_ZH"] = presentation.SOURCE_ZH


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(HOSPITAL_TIME_ZONE):%Y-%m-%d}"


MONTHLY_COLUMNS: list[Column] = [
    ("section", "部分"),
    ("item", "项目"),
    ("value", "数值"),
    ("note", "说明"),
]


def monthly_rows(report: MonthlyReport) -> list[dict[str, object]]:
    """The monthly report as rows of (section, item, value, note), for CSV and XLSX."""
    rows: list[dict[str, object]] = [
        {"section": "基本情况", "item": "合计", "value": report.basic.total},
        *(
            {"section": "基本情况", "item": t.label_zh, "value": t.count, "note": t.event_type}
            for t in report.basic.by_event_type
        ),
        *(
            {"section": "基本情况·投诉类别", "item": c.label_zh, "value": c.count}
            for c in report.basic.complaint_categories
        ),
    ]
    progress = report.progress
    rows += [
        {"section": "推进情况", "item": "本月受理案件", "value": progress.cases_opened},
        {"section": "推进情况", "item": "已调查", "value": progress.investigated},
        {"section": "推进情况", "item": "按期调查", "value": progress.on_time},
        {"section": "推进情况", "item": "已结案", "value": progress.closed},
        {"section": "推进情况", "item": "处理措施", "value": progress.measures_taken},
    ]
    problems = report.problems
    rows += [
        {
            "section": "存在问题·逾期案件",
            "item": case.case_id,
            "value": case.days_overdue,
            "note": f"{case.department_zh} 期限 {_day(case.deadline)}",
        }
        for case in problems.overdue_cases
    ]
    rows += [
        {
            "section": "存在问题·指标未达标",
            "item": kpi.label_zh,
            "value": presentation.figure(kpi.value, kpi.unit),
            "note": f"{kpi.status_zh}；目标 {presentation.target(kpi)}",
        }
        for kpi in problems.kpi_shortfalls
    ]
    rows += [
        {"section": "存在问题·本月未开展专题学习", "item": named.department_zh, "value": ""}
        for named in problems.without_study
    ]
    rows += [
        {"section": "存在问题·报送", "item": t.department_zh, "value": t.status_zh}
        for t in problems.reports_not_on_time
    ]
    return rows


KPI_COLUMNS: list[Column] = [
    ("label_zh", "指标"),
    ("scope_zh", "范围"),
    ("period", "期间"),
    ("value", "数值"),
    ("comparison", "比较"),
    ("target", "目标"),
    ("status_zh", "状态"),
    ("source_zh", "来源"),
    ("basis", "依据"),
]


def kpi_rows(statuses: list[KpiStatus], catalogue: DepartmentCatalogue) -> list[dict[str, object]]:
    """KPI statuses as people read them, for CSV and XLSX: rates as percentages, the scope's
    name, the comparison as a sign, the source in Chinese."""
    return [
        {
            "label_zh": s.label_zh,
            "scope_zh": "全院"
            if s.scope == HOSPITAL
            else presentation.department_name(s.scope, catalogue).department_zh,
            "period": s.period,
            "value": presentation.figure(s.value, s.unit),
            "comparison": presentation.COMPARISON_SIGN[s.comparison],
            "target": presentation.figure(s.target, s.unit),
            "status_zh": s.status_zh,
            "source_zh": presentation.SOURCE_ZH.get(s.source or "", ""),
            "basis": s.basis,
        }
        for s in statuses
    ]


class CaseView(BaseModel):
    case: CaseFact
    history: list[presentation.CaseStep]
    """Every change of the case, oldest first, and every refused action with its reason."""
    accessed_by: str
    """Who this access is logged under: the token's id, or desk:<username> for a person."""

    @classmethod
    def of(cls, record: CaseRecord, catalogue: DepartmentCatalogue, who: str) -> "CaseView":
        return cls(
            case=CaseFact.model_validate(record.model_dump(exclude={"history"})),
            history=presentation.case_steps(record.history, catalogue),
            accessed_by=who,
        )


class EscalationRegister(BaseModel):
    by_rule: list[registers.RuleCount]
    entries: list[registers.EscalationEntry] | None
    """None for auditors: entries name staff members."""


reports = wired(Reports, "reports")


ReportsDep = Annotated[Reports, Depends(reports)]


def department_asked(viewer: Viewer, reports: Reports, department: str | None) -> str | None:
    """The department a report is asked for (None: the hospital), as the viewer may read it:
    403 for another department's head, 404 for a department the catalogue does not list."""
    scope = viewer.department_scope(department)
    if not reports.knows(scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no department {scope!r}")
    return scope


async def monthly_asked(
    viewer: ViewerDep, reports: ReportsDep, month: Month, department: str | None = None
) -> MonthlyReport:
    """The monthly report asked for, as the viewer may read it (``department_asked``)."""
    scope = department_asked(viewer, reports, department)
    return await reports.monthly(month, scope, hidden_staff=viewer.staff_id)


MonthlyDep = Annotated[MonthlyReport, Depends(monthly_asked)]


def exported(
    found: Any,
    rows: list[dict[str, object]],
    columns: list[Column],
    fmt: ExportFormat,
    name: str,
    sheet: str,
) -> Any:
    """What was found as JSON, or ``rows`` as a table named ``name``."""
    if fmt is ExportFormat.JSON:
        return found
    return table(rows, columns, fmt=fmt, filename=name, sheet=sheet)


api = APIRouter(prefix="/v1/reports", tags=["reports"])


@api.get("/monthly", summary="Monthly report (月度工作开展情况): 基本情况, 推进情况, 存在问题")
async def monthly(report: MonthlyDep, format: Format = ExportFormat.JSON) -> Any:
    return exported(
        report,
        monthly_rows(report),
        MONTHLY_COLUMNS,
        format,
        f"月度工作开展情况-{report.department}-{report.month}",
        f"{report.department_zh}{report.month}",
    )


@api.get("/monthly/print", response_class=HTMLResponse, summary="Monthly report, printable")
async def monthly_print(request: Request, report: MonthlyDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "monthly.html", {"report": report})


@api.post(
    "/monthly/confirm",
    summary="Confirm a department's monthly report (due by the 20th of the next month)",
)
async def confirm(
    viewer: ViewerDep, reports: ReportsDep, month: Month, department: str | None = None
) -> Confirmation:
    viewer.require(Role.DEPARTMENT_HEAD, Role.CONDUCT_OFFICE)
    code = viewer.department_scope(department)
    if code is None or not reports.knows(code):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "name the department")
    return await reports.confirm(code, month, by=viewer.who)


@api.get("/kpi", summary="KPI status against the targets of 004 §五")
async def kpi(
    viewer: ViewerDep,
    reports: ReportsDep,
    period: Period,
    scope: str | None = None,
    format: Format = ExportFormat.JSON,
) -> Any:
    asked = viewer.department_scope(scope if scope != HOSPITAL else None) or HOSPITAL
    if len(period) == len("YYYY-MM") and not reports.knows(None if asked == HOSPITAL else asked):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no department {asked!r}")
    statuses = await reports.kpi(period, asked, hidden_staff=viewer.staff_id)
    rows = kpi_rows(statuses, reports.catalogue)
    return exported(statuses, rows, KPI_COLUMNS, format, f"指标-{asked}-{period}", "指标")


PROMOTION_BAR_COLUMNS: list[Column] = [
    ("staff_id", "工号"),
    ("case_id", "案件"),
    ("barred_from", "起始日"),
    ("barred_until", "截止日"),
    ("in_force", "是否在期"),
    ("explanation_zh", "说明"),
]
VENDOR_CUTOFF_COLUMNS: list[Column] = [
    ("company_code", "企业代码"),
    ("case_id", "案件"),
    ("cut_off_from", "起始日"),
    ("cut_off_until", "截止日"),
    ("lifted", "已恢复"),
    ("explanation_zh", "说明"),
]
RULE_COUNT_COLUMNS: list[Column] = [("rule_id", "规则"), ("count", "件数")]
ESCALATION_COLUMNS: list[Column] = [
    ("rule_id", "规则"),
    ("escalate_to_zh", "上报至"),
    ("subject", "对象"),
    ("case_id", "案件"),
    ("as_of", "日期"),
    ("explanation_zh", "说明"),
]
NOTICE_COLUMNS: list[Column] = [
    ("department_zh", "科室"),
    ("as_of", "日期"),
    ("item", "整改事项"),
    ("explanation_zh", "说明"),
]


def _listed(
    rows: list[Any], columns: list[Column], fmt: ExportFormat, name: str, sheet: str
) -> Any:
    """A register as JSON, or as a table named ``name``."""
    return exported(rows, [row.model_dump() for row in rows], columns, fmt, name, sheet)


@api.get("/registers/promotion-bars", summary="提职晋级限制登记 (conduct office)")
async def promotion_bars(
    viewer: ViewerDep, reports: ReportsDep, format: Format = ExportFormat.JSON
) -> Any:
    viewer.require(Role.CONDUCT_OFFICE)
    bars = await reports.promotion_bars()
    return _listed(bars, PROMOTION_BAR_COLUMNS, format, "提职晋级限制登记", "提职晋级限制")


@api.get(
    "/registers/vendor-cutoffs",
    summary="切断业务往来名单",
    dependencies=[Depends(access.viewer)],  # every role may read it: companies, not people
)
async def vendor_cutoffs(reports: ReportsDep, format: Format = ExportFormat.JSON) -> Any:
    cutoffs = await reports.vendor_cutoffs()
    return _listed(cutoffs, VENDOR_CUTOFF_COLUMNS, format, "切断业务往来名单", "切断业务往来")


@api.get("/registers/escalations", summary="上报清单, by rule")
async def escalation_register(
    viewer: ViewerDep, reports: ReportsDep, format: Format = ExportFormat.JSON
) -> Any:
    own = viewer.department if viewer.role is Role.DEPARTMENT_HEAD else None
    entries, counts = await reports.escalations(own)
    register = EscalationRegister(
        by_rule=counts, entries=None if viewer.role is Role.AUDITOR else entries
    )
    if format is ExportFormat.JSON:
        return register
    if register.entries is None:
        return _listed(counts, RULE_COUNT_COLUMNS, format, "上报统计", "上报统计")
    return _listed(register.entries, ESCALATION_COLUMNS, format, "上报清单", "上报清单")


@api.get("/registers/notices", summary="通报")
async def notice_register(
    viewer: ViewerDep, reports: ReportsDep, format: Format = ExportFormat.JSON
) -> Any:
    own = viewer.department if viewer.role is Role.DEPARTMENT_HEAD else None
    found = await reports.notices(own)
    return _listed(found, NOTICE_COLUMNS, format, "通报", "通报")


@api.get(
    "/cases/{case_id}",
    summary="One case (every access is logged)",
    responses={404: {"description": "No such case (yet), or not one this reader may see."}},
)
async def case(viewer: ViewerDep, reports: ReportsDep, case_id: str) -> CaseView:
    viewer.require(Role.CONDUCT_OFFICE, Role.DEPARTMENT_HEAD)
    # A case a head may not see (another department's, or one against them) is answered as a
    # missing one: the answer does not tell that it exists.
    found = await reports.case(case_id, viewer.department_scope(None))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "case not found")
    await reports.log_access(case_id, token_id=viewer.who, role=str(viewer.role))
    logger.info("case %s read by %s (%s)", case_id, viewer.who, viewer.role)
    return CaseView.of(found, reports.catalogue, viewer.who)


@api.get("/cases/{case_id}/accesses", summary="Who read a case's details, and when")
async def accesses(viewer: ViewerDep, reports: ReportsDep, case_id: str) -> list[dict[str, Any]]:
    viewer.require(Role.CONDUCT_OFFICE)
    return [logged.model_dump() for logged in await reports.accesses(case_id)]
