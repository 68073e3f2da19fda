"""The conduct office's dashboard: trends by month, categories, departments, open and overdue
cases, KPI status against targets, with charts drawn as inline SVG (nothing is fetched from
elsewhere). A browser signs in with its report token and is given a session
(access.Access); a browser not signed in is sent to the sign-in page."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reporting.access import AccessDep, SignedInDep
from services.reporting.api import ReportsDep, department_asked, templates

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


pages = APIRouter(tags=["dashboard"], include_in_schema=False)


@pages.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@pages.post("/login", response_class=HTMLResponse)
async def login(request: Request, access: AccessDep, token: Annotated[str, Form()]) -> Response:
    viewer = await access.verify(token)
    if viewer is None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "令牌无效或已撤销 / unknown or revoked token"},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)
    await access.sign_in(viewer, response)
    return response


@pages.post("/logout")
async def logout(request: Request, access: AccessDep) -> Response:
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    await access.sign_out(request, response)
    return response


@pages.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, viewer: SignedInDep, reports: ReportsDep) -> Response:
    if viewer is None:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    shown = await reports.dashboard(department_asked(viewer, reports, None))
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "viewer": viewer,
            "report": shown.report,
            "open_cases": shown.open_cases,
            "overdue_cases": shown.overdue_cases,
            "trend": bars(shown.trend),
            "categories": bars(shown.categories),
            "departments": bars(shown.departments),
            "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT},
        },
    )
