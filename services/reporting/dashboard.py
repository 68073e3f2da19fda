"""The conduct office's dashboard: trends by month, categories, departments, open and overdue
cases, KPI status against targets, with charts drawn as inline SVG (nothing is fetched from
elsewhere). People sign in at the desk (``access``); a browser not signed in there is sent to
the desk's sign-in page, which sends it back here. The open and overdue tiles open the desk's
lists of those cases."""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.common.roles import Role
from services.reporting.access import Access, AccessDep, SignedInDep
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
STYLESHEET = Path(__file__).with_name("static") / "reporting.css"


@pages.get("/static/reporting.css")
async def stylesheet() -> FileResponse:
    return FileResponse(STYLESHEET, media_type="text/css")


def sign_in_at_the_desk(request: Request, access: Access) -> RedirectResponse:
    """Off to the desk's sign-in page, which sends the browser back to the dashboard."""
    back = urlencode({"next": str(request.url_for("dashboard"))})
    return RedirectResponse(
        f"{access.desk_page_url}/login?{back}", status_code=status.HTTP_303_SEE_OTHER
    )


@pages.get("/login")
async def login(request: Request, access: AccessDep) -> Response:
    """People sign in at the desk (one sign-in for the desk and the reports)."""
    return sign_in_at_the_desk(request, access)


@pages.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request, viewer: SignedInDep, access: AccessDep, reports: ReportsDep
) -> Response:
    if viewer is None:
        return sign_in_at_the_desk(request, access)
    shown = await reports.dashboard(
        department_asked(viewer, reports, None), hidden_staff=viewer.staff_id
    )
    return templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "viewer": viewer,
            "desk": access.desk_page_url,
            "with_cases": viewer.role is not Role.AUDITOR,
            "report": shown.report,
            "open_cases": shown.open_cases,
            "overdue_cases": shown.overdue_cases,
            "trend": bars(shown.trend),
            "categories": bars(shown.categories),
            "departments": bars(shown.departments),
            "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT},
        },
    )
