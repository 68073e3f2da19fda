"""HTTP: reports, KPI status and registers as JSON, CSV or XLSX; the monthly report also as a
printable page. Every route needs a report token; what it shows depends on the role."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from schemas.base import HOSPITAL_TIME_ZONE
from services.common.departments import DepartmentCatalogue
from services.escalation.rulebook import RuleBook
from services.reporting import presentation, registers
from services.reporting.access import Role, ViewerDep
from services.reporting.exports import Column, ExportFormat, table
from services.reporting.facts import HOSPITAL, CaseFact, CaseRecord, department_cases
from services.reporting.kpi import KpiStatus, KpiTargets, kpi_status
from services.reporting.monthly import Confirmation, MonthlyReport, monthly_report
from services.reporting.repository import ReportRepository

logger = logging.getLogger(__name__)

Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
Format = Annotated[ExportFormat, Query(description="json, csv or xlsx")]
Clock = Callable[[], datetime]
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


@dataclass(frozen=True)
class ReportContext:
    reports: ReportRepository
    catalogue: DepartmentCatalogue
    targets: KpiTargets
    book: RuleBook
    clock: Clock

    async def monthly(self, month: str, department: str | None) -> MonthlyReport:
        if department is not None and department not in self.catalogue.departments:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no department {department!r}")
        return monthly_report(
            await self.reports.month_data([month]),
            month=month,
            department=department,
            catalogue=self.catalogue,
            targets=self.targets,
            book=self.book,
            now=self.clock(),
        )


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
    """The token id this access is logged under."""

    @classmethod
    def of(cls, record: CaseRecord, catalogue: DepartmentCatalogue, token_id: str) -> "CaseView":
        return cls(
            case=CaseFact.model_validate(record.model_dump(exclude={"history"})),
            history=presentation.case_steps(record.history, catalogue),
            accessed_by=token_id,
        )


class EscalationRegister(BaseModel):
    by_rule: list[registers.RuleCount]
    entries: list[registers.EscalationEntry] | None
    """None for auditors: entries name staff members."""


def build_api(context: ReportContext) -> APIRouter:
    api = APIRouter(prefix="/v1/reports", tags=["reports"])
    reports = context.reports

    @api.get("/monthly", summary="Monthly report (月度工作开展情况): 基本情况, 推进情况, 存在问题")
    async def monthly(
        viewer: ViewerDep,
        month: Month,
        department: str | None = None,
        format: Format = ExportFormat.JSON,
    ) -> Any:
        report = await context.monthly(month, viewer.department_scope(department))
        if format is ExportFormat.JSON:
            return report
        return table(
            monthly_rows(report),
            MONTHLY_COLUMNS,
            fmt=format,
            filename=f"月度工作开展情况-{report.department}-{month}",
            sheet=f"{report.department_zh}{month}",
        )

    @api.get("/monthly/print", response_class=HTMLResponse, summary="Monthly report, printable")
    async def monthly_print(
        request: Request, viewer: ViewerDep, month: Month, department: str | None = None
    ) -> HTMLResponse:
        report = await context.monthly(month, viewer.department_scope(department))
        return templates.TemplateResponse(request, "monthly.html", {"report": report})

    @api.post(
        "/monthly/confirm",
        summary="Confirm a department's monthly report (due by the 20th of the next month)",
    )
    async def confirm(
        viewer: ViewerDep, month: Month, department: str | None = None
    ) -> Confirmation:
        viewer.require(Role.DEPARTMENT_HEAD, Role.CONDUCT_OFFICE)
        code = viewer.department_scope(department)
        if code is None or code not in context.catalogue.departments:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "name the department")
        return await reports.confirm(
            Confirmation(
                department=code,
                month=month,
                confirmed_at=context.clock(),
                confirmed_by=viewer.token_id,
            )
        )

    @api.get("/kpi", summary="KPI status against the targets of 004 §五")
    async def kpi(
        viewer: ViewerDep,
        period: Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")],
        scope: str | None = None,
        format: Format = ExportFormat.JSON,
    ) -> Any:
        asked = viewer.department_scope(scope if scope != HOSPITAL else None) or HOSPITAL
        if len(period) == 7:
            report = await context.monthly(period, None if asked == HOSPITAL else asked)
            statuses: list[KpiStatus] = report.kpi
        else:
            statuses = kpi_status(
                context.targets,
                await reports.observations(),
                scope=asked,
                period=period,
                computed={},
            )
        if format is ExportFormat.JSON:
            return statuses
        return table(
            kpi_rows(statuses, context.catalogue),
            KPI_COLUMNS,
            fmt=format,
            filename=f"指标-{asked}-{period}",
            sheet="指标",
        )

    @api.get("/registers/promotion-bars", summary="提职晋级限制登记 (conduct office)")
    async def promotion_bars(viewer: ViewerDep, format: Format = ExportFormat.JSON) -> Any:
        viewer.require(Role.CONDUCT_OFFICE)
        today = context.clock().astimezone(HOSPITAL_TIME_ZONE).date()
        bars = registers.promotion_bars(await reports.all_decisions(), today=today)
        if format is ExportFormat.JSON:
            return bars
        return table(
            [bar.model_dump() for bar in bars],
            [
                ("staff_id", "工号"),
                ("case_id", "案件"),
                ("barred_from", "起始日"),
                ("barred_until", "截止日"),
                ("in_force", "是否在期"),
                ("explanation_zh", "说明"),
            ],
            fmt=format,
            filename="提职晋级限制登记",
            sheet="提职晋级限制",
        )

    @api.get("/registers/vendor-cutoffs", summary="切断业务往来名单")
    async def vendor_cutoffs(viewer: ViewerDep, format: Format = ExportFormat.JSON) -> Any:
        del viewer  # every role may read it: companies, not people
        cutoffs = registers.vendor_cutoffs(await reports.all_decisions())
        if format is ExportFormat.JSON:
            return cutoffs
        return table(
            [cutoff.model_dump() for cutoff in cutoffs],
            [
                ("company_code", "企业代码"),
                ("case_id", "案件"),
                ("cut_off_from", "起始日"),
                ("cut_off_until", "截止日"),
                ("lifted", "已恢复"),
                ("explanation_zh", "说明"),
            ],
            fmt=format,
            filename="切断业务往来名单",
            sheet="切断业务往来",
        )

    @api.get("/registers/escalations", summary="上报清单, by rule")
    async def escalation_register(viewer: ViewerDep, format: Format = ExportFormat.JSON) -> Any:
        entries, counts = registers.escalations(await reports.all_decisions())
        if viewer.role is Role.DEPARTMENT_HEAD:
            cases = await reports.all_cases()
            own = {c.case_id for c in department_cases(cases, viewer.department, context.catalogue)}
            entries = [entry for entry in entries if entry.case_id in own]
            counts = registers.rule_counts(entries)
        register = EscalationRegister(
            by_rule=counts, entries=None if viewer.role is Role.AUDITOR else entries
        )
        if format is ExportFormat.JSON:
            return register
        if register.entries is None:
            return table(
                [count.model_dump() for count in counts],
                [("rule_id", "规则"), ("count", "件数")],
                fmt=format,
                filename="上报统计",
                sheet="上报统计",
            )
        return table(
            [entry.model_dump() for entry in register.entries],
            [
                ("rule_id", "规则"),
                ("escalate_to_zh", "上报至"),
                ("subject", "对象"),
                ("case_id", "案件"),
                ("as_of", "日期"),
                ("explanation_zh", "说明"),
            ],
            fmt=format,
            filename="上报清单",
            sheet="上报清单",
        )

    @api.get("/registers/notices", summary="通报")
    async def notice_register(viewer: ViewerDep, format: Format = ExportFormat.JSON) -> Any:
        found = registers.notices(await reports.all_decisions(), context.catalogue)
        if viewer.role is Role.DEPARTMENT_HEAD:
            found = [notice for notice in found if notice.department == viewer.department]
        if format is ExportFormat.JSON:
            return found
        return table(
            [notice.model_dump() for notice in found],
            [
                ("department_zh", "科室"),
                ("as_of", "日期"),
                ("item", "整改事项"),
                ("explanation_zh", "说明"),
            ],
            fmt=format,
            filename="通报",
            sheet="通报",
        )

    @api.get(
        "/cases/{case_id}",
        summary="One case (every access is logged)",
        responses={404: {"description": "No such case (yet), or not one this reader may see."}},
    )
    async def case(viewer: ViewerDep, case_id: str) -> CaseView:
        viewer.require(Role.CONDUCT_OFFICE, Role.DEPARTMENT_HEAD)
        found = await reports.case(case_id)
        # A case a head may not see (another department's, or one against them) is answered as
        # a missing one: the answer does not tell that it exists.
        scope = viewer.department_scope(None)
        if found is None or not department_cases([found], scope, context.catalogue):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "case not found")
        await reports.log_access(
            token_id=viewer.token_id, role=str(viewer.role), case_id=case_id, at=context.clock()
        )
        logger.info("case %s read with token %s (%s)", case_id, viewer.token_id, viewer.role)
        return CaseView.of(found, context.catalogue, viewer.token_id)

    @api.get("/cases/{case_id}/accesses", summary="Who read a case's details, and when")
    async def accesses(viewer: ViewerDep, case_id: str) -> list[dict[str, Any]]:
        viewer.require(Role.CONDUCT_OFFICE)
        return await reports.accesses(case_id)

    return api
