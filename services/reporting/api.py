"""HTTP: reports as JSON."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from services.reporting.domain import CaseCountReport, CaseSummary, case_count_report, case_summary
from services.reporting.repository import ReportRepository

Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


def build_api(reports: ReportRepository) -> APIRouter:
    api = APIRouter(prefix="/v1/reports")

    @api.get("/case-counts", summary="Cases received by department and category (基本情况)")
    async def case_counts(month: Month = None) -> CaseCountReport:
        return case_count_report(await reports.case_counts(month=month), month=month)

    @api.get(
        "/cases/{case_id}",
        summary="One case as reporting sees it",
        responses={404: {"description": "No such case (yet)."}},
    )
    async def case(case_id: str) -> CaseSummary:
        fact = await reports.case(case_id)
        if fact is None or "month" not in fact:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"case {case_id} not found")
        return case_summary(case_id, fact)

    return api
