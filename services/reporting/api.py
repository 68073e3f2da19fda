"""HTTP: reports as JSON."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.reporting.domain import CaseCountReport, case_count_report
from services.reporting.repository import ReportRepository

Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


def build_api(reports: ReportRepository) -> APIRouter:
    api = APIRouter(prefix="/v1/reports")

    @api.get("/case-counts", summary="Cases received by department and category (基本情况)")
    async def case_counts(month: Month = None) -> CaseCountReport:
        return case_count_report(await reports.case_counts(month=month), month=month)

    return api
