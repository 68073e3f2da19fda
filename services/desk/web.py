"""What every desk page and endpoint shares: the desk's parts on the app, who is signed in,
CSRF, the page headers, and the answers a person reads when something is refused."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from schemas.base import HOSPITAL_TIME_ZONE, hospital_day
from schemas.case import CaseState
from schemas.complaint import ComplaintCategory, ComplaintChannel
from services.common.departments import DepartmentCatalogue
from services.common.desk_sessions import DESK_SESSION_COOKIE
from services.common.pages import csrf_matches, page_headers, page_policy
from services.common.roles import Role
from services.common.service import wired
from services.desk.access import REGISTER_ROLES, Account, ActionKind, Viewer
from services.desk.casework import Casework
from services.desk.settings import DeskSettings
from services.desk.signin import Accounts, Sessions, SignIn, viewer_of
from services.desk.store import Session

COOKIE = DESK_SESSION_COOKIE
LOGIN_COOKIE = "qinglian_desk_sign_in"
"""Holds the sign-in form's CSRF token until the form comes back (double submit)."""

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def hospital_minute(moment: datetime) -> str:
    return moment.astimezone(HOSPITAL_TIME_ZONE).strftime("%Y-%m-%d %H:%M")


templates.env.filters["minute"] = hospital_minute


@dataclass
class Desk:
    """The desk's parts, on ``app.state.desk``."""

    settings: DeskSettings
    catalogue: DepartmentCatalogue
    casework: Casework
    accounts: Accounts
    sign_in: SignIn
    sessions: Sessions

    @property
    def secure_cookies(self) -> bool:
        return self.settings.env != "development"  # development runs plain HTTP on loopback

    def set_cookie(self, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name, value, httponly=True, samesite="strict", secure=self.secure_cookies, path="/"
        )

    def forget_cookie(self, response: Response, name: str) -> None:
        response.delete_cookie(
            name, httponly=True, samesite="strict", secure=self.secure_cookies, path="/"
        )


desk_of = wired(Desk, "desk")


DeskDep = Annotated[Desk, Depends(desk_of)]


class PageError(Exception):
    """A page a person may not have, or a request that cannot be done: answered with a page
    saying why, in Chinese first."""

    def __init__(self, status_code: int, message: str, *, redirect: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.redirect = redirect


def sign_in_required() -> PageError:
    return PageError(status.HTTP_303_SEE_OTHER, "请先登录 / sign in first", redirect="/login")


@dataclass(frozen=True)
class Signed:
    session_id: str
    session: Session
    account: Account

    @property
    def viewer(self) -> Viewer:
        return viewer_of(self.account)


async def signed(request: Request, desk: DeskDep) -> Signed:
    """The signed-in person, or off to the sign-in page."""
    session_id = request.cookies.get(COOKIE)
    found = await desk.sessions.current(session_id) if session_id else None
    if session_id is None or found is None:
        raise sign_in_required()
    return Signed(session_id, *found)


SignedDep = Annotated[Signed, Depends(signed)]


async def desk_user(signed: SignedDep) -> Signed:
    """A person who works with cases on the desk (with a password of their own)."""
    if signed.account.password_expired:
        raise PageError(status.HTTP_303_SEE_OTHER, "", redirect="/password")
    if not signed.viewer.uses_desk:
        raise PageError(
            status.HTTP_403_FORBIDDEN,
            f"{signed.account.role.label_zh}账号不使用案件台；统计数据见报表 / "
            f"a {signed.account.role} account has no case desk: see the reports",
        )
    return signed


DeskUserDep = Annotated[Signed, Depends(desk_user)]


def check_csrf(form: FormData, expected: str | None) -> None:
    if not csrf_matches(form.get("csrf_token"), expected):
        raise PageError(
            status.HTTP_403_FORBIDDEN,
            "表单校验失败，请返回刷新后重试 / the form's CSRF token is missing or wrong",
        )


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A page, with what every page's frame shows."""
    desk = desk_of(request)

    def department(code: str | None) -> str:
        entry = desk.catalogue.departments.get(code or "")
        return f"{entry.name_zh} {entry.name_en}" if entry else (code or "")

    today = hospital_day(desk.casework.clock())

    def days_left(deadline: datetime) -> int:
        return (hospital_day(deadline) - today).days

    common = {
        "days_left": days_left,
        "department": department,
        "catalogue": desk.catalogue,
        "reporting_url": desk.settings.reporting_url,
        "states": list(CaseState),
        "categories": list(ComplaintCategory),
        "channels": list(ComplaintChannel),
        "kinds": ActionKind,
        "roles": Role,
        "register_roles": REGISTER_ROLES,
    }
    return templates.TemplateResponse(request, name, common | context, status_code=status_code)


async def refused_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageError)  # noqa: S101 (registered for PageError only)
    if error.redirect is not None:
        return RedirectResponse(error.redirect, status_code=status.HTTP_303_SEE_OTHER)
    return page(request, "message.html", {"message": error.message}, error.status_code)


def install(app: FastAPI, desk: Desk) -> None:
    app.state.desk = desk
    app.add_exception_handler(PageError, refused_page)
    # The sign-in form's answer may lead to the reports (where the person came from).
    app.middleware("http")(page_headers(page_policy(desk.settings.reporting_url)))
