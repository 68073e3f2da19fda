"""What every portal page and endpoint shares: the portal's parts on the app, the browser's
cookie (CSRF and the device a rating is counted against), the page headers, the follow-up
code's check, and the answers a reporter reads when something is refused."""

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.templating import Jinja2Templates
from prometheus_client import Counter
from starlette.datastructures import FormData

from schemas.base import HOSPITAL_TIME_ZONE
from schemas.complaint import ComplaintCategory
from schemas.satisfaction import Touchpoint
from services.common.departments import DepartmentCatalogue
from services.common.intake_client import IntakeClient
from services.common.metrics import Metrics, metric
from services.common.pages import csrf_matches, new_token, page_headers, page_policy
from services.common.service import Clock, wired
from services.portal.domain import KnownCode
from services.portal.follow_ups import FollowUps
from services.portal.ratings import RatingLimit
from services.portal.wrong_codes import WrongCodeLimit

BROWSER_COOKIE = "qinglian_portal"
"""A random id of the browser: the CSRF token its forms send back (double submit), and the
device its ratings are counted against. Nothing else; it names no person."""
BROWSER_COOKIE_DAYS = 365

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def hospital_minute(moment: datetime) -> str:
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")


templates.env.filters["minute"] = hospital_minute


@dataclass(frozen=True)
class PortalMetrics(Metrics):
    follow_up_codes: Counter = metric("qinglian_portal_follow_up_codes")
    ratings: Counter = metric("qinglian_portal_ratings")


@dataclass(frozen=True)
class Portal:
    """The portal's parts (``app.state.portal``, set by main.py)."""

    follow_ups: FollowUps
    wrong_codes: WrongCodeLimit
    ratings: RatingLimit
    intake: IntakeClient
    catalogue: DepartmentCatalogue
    qr_key: bytes
    secure_cookies: bool
    clock: Clock
    metrics: PortalMetrics


portal_of = wired(Portal, "portal")


PortalDep = Annotated[Portal, Depends(portal_of)]


def address_of(request: Request) -> str:
    """The connecting address, or what a trusted proxy says it is (``service.serve``)."""
    return request.client.host if request.client else "unknown"


class TooManyWrongCodesError(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("too many wrong follow-up codes")
        self.retry_after_seconds = retry_after_seconds


class UnknownCodeError(Exception):
    """No complaint has this code (a wrong one and one not yet known alike)."""


async def complaint_of(portal: Portal, address: str, code: str) -> KnownCode:
    """The complaint of a code. A wrong code and an unknown one take the same steps (one count,
    one look-up, one insert, one count), so neither answer nor time tells them apart."""
    limit = portal.wrong_codes
    key = limit.key(address, code)
    now = portal.clock()
    exhausted, known = await asyncio.gather(
        limit.exhausted(key, now=now), portal.follow_ups.known(code)
    )
    counted = portal.metrics.follow_up_codes
    if exhausted:
        counted.labels("refused").inc()
        raise TooManyWrongCodesError(int(limit.window.total_seconds()))
    if known is not None:
        counted.labels("known").inc()
        return known
    if not await limit.still_allowed_after(key, now=now):
        counted.labels("refused").inc()
        raise TooManyWrongCodesError(int(limit.window.total_seconds()))
    counted.labels("wrong").inc()
    raise UnknownCodeError


class PageError(Exception):
    """A request that cannot be done: answered with a page saying why, in Chinese first."""

    def __init__(self, status_code: int, message: str, *, back: str = "/") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.back = back


def browser_id(request: Request) -> str | None:
    return request.cookies.get(BROWSER_COOKIE)


def check_csrf(request: Request, form: FormData) -> str:
    """The browser's id, once the form proved it came from the portal's own page."""
    expected = browser_id(request)
    if not csrf_matches(form.get("csrf_token"), expected) or expected is None:
        raise PageError(
            status.HTTP_403_FORBIDDEN,
            "表单已过期，请返回重新打开页面后再提交 / the form has expired: open the page again",
        )
    return expected


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A page with its form's CSRF token (the browser's cookie, set when it has none)."""
    portal = portal_of(request)
    token = browser_id(request) or new_token()
    common = {
        "csrf_token": token,
        "form_token": secrets.token_urlsafe(18),
        "catalogue": portal.catalogue,
        "categories": list(ComplaintCategory),
        "touchpoints": list(Touchpoint),
    }
    response = templates.TemplateResponse(request, name, common | context, status_code=status_code)
    if browser_id(request) is None:
        response.set_cookie(
            BROWSER_COOKIE,
            token,
            max_age=BROWSER_COOKIE_DAYS * 86400,
            httponly=True,
            samesite="strict",
            secure=portal.secure_cookies,
            path="/",
        )
    return response


async def refused_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageError)  # noqa: S101 (registered for PageError only)
    context = {"message": error.message, "back": error.back}
    return page(request, "message.html", context, error.status_code)


def install(app: FastAPI, portal: Portal) -> None:
    app.state.portal = portal
    app.add_exception_handler(PageError, refused_page)
    app.middleware("http")(page_headers(page_policy()))
