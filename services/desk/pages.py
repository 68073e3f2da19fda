"""The desk's pages: sign-in and sign-out, choosing a password, the case list and the case
page with its action forms. Server-rendered, no script; every form carries a CSRF token."""

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import FileResponse, RedirectResponse, Response

from services.common.pages import FORM_TOKEN, new_token
from services.desk.access import Account, ActionKind
from services.desk.attachments import attachments_of
from services.desk.casework import CasePage
from services.desk.exports import export
from services.desk.forms import FIELD_LABELS, FormError
from services.desk.listing import ListQuery
from services.desk.signin import password_problem, viewer_of
from services.desk.web import (
    COOKIE,
    LOGIN_COOKIE,
    DeskDep,
    DeskUserDep,
    PageError,
    SignedDep,
    check_csrf,
    page,
)

STYLESHEET = Path(__file__).with_name("static") / "desk.css"
_SIGN_IN_REFUSALS = {
    "wrong": (status.HTTP_401_UNAUTHORIZED, "用户名或密码错误 / wrong username or password"),
    "locked_out": (
        status.HTTP_429_TOO_MANY_REQUESTS,
        "登录失败次数过多，请稍后再试 / too many failed sign-ins: try again later",
    ),
    "directory_down": (
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "无法连接统一身份目录，请稍后再试 / the directory cannot be reached: try again later",
    ),
}

pages = APIRouter(include_in_schema=False)


@pages.get("/static/desk.css")
async def stylesheet() -> FileResponse:
    return FileResponse(STYLESHEET, media_type="text/css")


@pages.get("/")
async def home(signed: SignedDep) -> Response:
    del signed  # signed in: off to the list; otherwise the dependency sends to /login
    return RedirectResponse("/cases", status_code=status.HTTP_303_SEE_OTHER)


def _sign_in_page(
    request: Request, desk: DeskDep, error: str | None, code: int, back: str | None = None
) -> Response:
    token = new_token()
    context = {"error": error, "csrf_token": token, "back": back}
    response = page(request, "login.html", context, code)
    desk.set_cookie(response, LOGIN_COOKIE, token)
    return response


def _home(desk: DeskDep, account: Account) -> str:
    """Where a person starts: the case list, or the reports for those without a desk (the
    auditor)."""
    return "/cases" if viewer_of(account).uses_desk else f"{desk.settings.reporting_url}/dashboard"


def return_path(desk: DeskDep, asked: object) -> str | None:
    """Where a sign-in may send the browser back to (``next``): a page of the desk, or one of
    the reports under ``reporting_url``; None for anything else, never another host."""
    if not isinstance(asked, str) or not asked.isprintable() or "\\" in asked or " " in asked:
        return None
    if asked.startswith("/") and not asked.startswith("//"):
        return asked
    return asked if asked.startswith(desk.settings.reporting_url.rstrip("/") + "/") else None


@pages.get("/login")
async def login_page(request: Request, desk: DeskDep) -> Response:
    back = return_path(desk, request.query_params.get("next"))
    return _sign_in_page(request, desk, None, status.HTTP_200_OK, back)


@pages.post("/login")
async def login(request: Request, desk: DeskDep) -> Response:
    form = await request.form()
    check_csrf(form, request.cookies.get(LOGIN_COOKIE))
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    back = return_path(desk, form.get("next"))
    address = request.client.host if request.client else "unknown"
    outcome = await desk.sign_in.attempt(username, password, address)
    if outcome.account is None:
        code, message = _SIGN_IN_REFUSALS[outcome.refusal or "wrong"]
        return _sign_in_page(request, desk, message, code, back)
    session_id, _ = await desk.sessions.start(outcome.account, address)
    if outcome.account.password_expired:
        target = "/password" + (f"?{urlencode({'next': back})}" if back else "")
    else:
        target = back or _home(desk, outcome.account)
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    desk.set_cookie(response, COOKIE, session_id)
    desk.forget_cookie(response, LOGIN_COOKIE)
    return response


@pages.post("/logout")
async def logout(request: Request, desk: DeskDep, signed: SignedDep) -> Response:
    check_csrf(await request.form(), signed.session.csrf_token)
    await desk.sessions.end(signed.session_id)
    address = request.client.host if request.client else "unknown"
    await desk.sign_in.record("signed_out", signed.account.username, address)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    desk.forget_cookie(response, COOKIE)
    return response


@pages.get("/password")
async def password_page(request: Request, desk: DeskDep, signed: SignedDep) -> Response:
    back = return_path(desk, request.query_params.get("next"))
    return page(request, "password.html", {"signed": signed, "error": None, "back": back})


@pages.post("/password")
async def choose_password(request: Request, desk: DeskDep, signed: SignedDep) -> Response:
    form = await request.form()
    check_csrf(form, signed.session.csrf_token)
    if signed.account.source != "local":
        raise PageError(
            status.HTTP_403_FORBIDDEN, "密码由统一身份目录管理 / the directory keeps it"
        )
    new, repeated = str(form.get("password") or ""), str(form.get("repeated") or "")
    back = return_path(desk, form.get("next"))
    problem = password_problem(signed.account, new, repeated)
    if problem:
        context = {"signed": signed, "error": problem, "back": back}
        return page(request, "password.html", context, status.HTTP_422_UNPROCESSABLE_CONTENT)
    await desk.accounts.choose_password(signed.account, new)
    address = request.client.host if request.client else "unknown"
    await desk.sign_in.record("password_changed", signed.account.username, address)
    target = back or _home(desk, signed.account)
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


def list_query(
    state: str = "",
    department: str = "",
    category: str = "",
    channel: str = "",
    overdue: str = "",
    due_soon: str = "",
    conflict: str = "",
    search: Annotated[str, Query(max_length=64)] = "",
    descending: str = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> ListQuery:
    return ListQuery(
        state,
        department,
        category,
        channel,
        overdue,
        due_soon,
        conflict,
        search,
        bool(descending),
        page,
    )


@pages.get("/cases")
async def case_list(
    request: Request,
    desk: DeskDep,
    signed: DeskUserDep,
    query: Annotated[ListQuery, Depends(list_query)],
    format: Annotated[str, Query(pattern="^(html|csv|xlsx)$")] = "html",
) -> Response:
    selected, listing = desk.casework.selected(signed.viewer, query)
    if format != "html":
        return export(selected, format, desk.catalogue, now=desk.casework.clock())
    context = {"signed": signed, "query": query, "listing": listing, "now": desk.casework.clock()}
    return page(request, "cases.html", context)


async def _case_page(
    request: Request, desk: DeskDep, signed: DeskUserDep, case_id: str, **extra: object
) -> Response:
    found: CasePage | None = await desk.casework.page(signed.viewer, case_id)
    if found is None:
        raise PageError(status.HTTP_404_NOT_FOUND, "没有这个案件 / no such case")
    context = {
        "signed": signed,
        "found": found,
        "now": desk.casework.clock(),
        "form_token": new_token(),
        "labels": FIELD_LABELS,
        "problems": [],
        "posted": {},
        "attachments": await attachments_of(desk.casework.intake, found.case),
    }
    code = status.HTTP_422_UNPROCESSABLE_CONTENT if extra.get("problems") else status.HTTP_200_OK
    return page(request, "case.html", context | extra, code)


@pages.get("/cases/{case_id}")
async def case_page(request: Request, desk: DeskDep, signed: DeskUserDep, case_id: str) -> Response:
    return await _case_page(request, desk, signed, case_id)


@pages.post("/cases/{case_id}/{kind}")
async def act(
    request: Request, desk: DeskDep, signed: DeskUserDep, case_id: str, kind: ActionKind
) -> Response:
    form = await request.form()
    check_csrf(form, signed.session.csrf_token)
    case = await desk.casework.visible_case(signed.viewer, case_id)
    if case is None:
        raise PageError(status.HTTP_404_NOT_FOUND, "没有这个案件 / no such case")
    if kind not in desk.casework.rules.actions(signed.viewer, desk.casework.index.rows[case_id]):
        raise PageError(
            status.HTTP_403_FORBIDDEN, f"您不能对此案件{kind.label_zh} / not yours to do"
        )
    token = str(form.get("form_token") or "")
    if not FORM_TOKEN.fullmatch(token):
        raise PageError(status.HTTP_400_BAD_REQUEST, "表单缺少令牌，请刷新 / the form has no token")
    fields = {name: [str(v) for v in form.getlist(name)] for name in form}
    try:
        await desk.casework.act(signed.viewer, case, kind, fields, token)
    except FormError as refused:
        posted = {name: values for name, values in fields.items() if name != "csrf_token"}
        return await _case_page(
            request,
            desk,
            signed,
            case_id,
            problems=refused.problems,
            posted=posted,
            failed_kind=kind,
        )
    return RedirectResponse(f"/cases/{case_id}#outcomes", status_code=status.HTTP_303_SEE_OTHER)
