"""The conduct office's dashboard: trends by month, categories, departments, open and overdue
cases, KPI status against targets, with charts drawn as inline SVG (nothing is fetched from
elsewhere). A browser signs in with its report token and is given a session
(access.DashboardSessions); a browser not signed in is sent to the sign-in page."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from schemas.base import HOSPITAL_TIME_ZONE
from services.reporting.access import DashboardSessions, ReportTokens, SignedInDep
from services.reporting.api import ReportContext, templates
from services.reporting.facts import department_cases, report_month

CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 560, 180, 6


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


def bars(items: list[tuple[str, int]]) -> list[Bar]:
    """Bar geometry for a chart CHART_WIDTH × CHART_HEIGHT, tallest bar full height."""
    if not items:
        return []
    top = max(value for _, value in items) or 1
    width = (CHART_WIDTH - BAR_GAP * (len(items) + 1)) / len(items)
    return [
        Bar(
            label=label,
            value=value,
            x=BAR_GAP + index * (width + BAR_GAP),
            y=CHART_HEIGHT - CHART_HEIGHT * value / top,
            width=width,
            height=CHART_HEIGHT * value / top,
        )
        for index, (label, value) in enumerate(items)
    ]


def last_months(today: date, count: int) -> list[str]:
    months = []
    day = today.replace(day=1)
    for _ in range(count):
        months.append(day.strftime("%Y-%m"))
        day = (day - timedelta(days=1)).replace(day=1)
    return months[::-1]


def build_dashboard(context: ReportContext) -> APIRouter:
    pages = APIRouter(tags=["dashboard"], include_in_schema=False)

    @pages.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"error": None})

    @pages.post("/login", response_class=HTMLResponse)
    async def login(request: Request, token: Annotated[str, Form()]) -> Response:
        tokens: ReportTokens = request.app.state.report_tokens
        viewer = await tokens.verify(token)
        if viewer is None:
            return templates.TemplateResponse(
                request,
                "login.html",
                {"error": "令牌无效或已撤销 / unknown or revoked token"},
                status_code=status.HTTP_401_UNAUTHORIZED,
            )
        response = RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)
        sessions: DashboardSessions = request.app.state.dashboard_sessions
        await sessions.sign_in(viewer, response)
        return response

    @pages.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
        sessions: DashboardSessions = request.app.state.dashboard_sessions
        await sessions.sign_out(request, response)
        return response

    @pages.get("/dashboard", response_class=HTMLResponse)
    async def dashboard(request: Request, viewer: SignedInDep) -> Response:
        if viewer is None:
            return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
        now = context.clock()
        department = viewer.department_scope(None)
        months = last_months(now.astimezone(HOSPITAL_TIME_ZONE).date(), 12)
        month = report_month(now)
        report = await context.monthly(month, department)
        cases = department_cases(await context.reports.all_cases(), department, context.catalogue)
        trend = [(m[2:], sum(fact.month == m for fact in cases)) for m in months]
        # The categories and departments of the cases the tiles count (opened this month), not
        # the month's events: a complaint may be received months after what it reports.
        this_month = [fact for fact in cases if fact.month == month]
        by_department = Counter(fact.department_zh for fact in this_month)
        categories = Counter(fact.category.label_zh for fact in this_month if fact.category)
        return templates.TemplateResponse(
            request,
            "dashboard.html",
            {
                "viewer": viewer,
                "report": report,
                "open_cases": sum(fact.closed_at is None for fact in cases),
                "overdue_cases": sum(fact.overdue(now) for fact in cases),
                "trend": bars(trend),
                "categories": bars(categories.most_common()),
                "departments": bars(by_department.most_common()),
                "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT},
            },
        )

    return pages
