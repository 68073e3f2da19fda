"""The public pages: the complaint form (``/``), the follow-up page (``/follow-up``: the code
only ever in a POST body) and the 扫码评价 rating page a QR code opens. Server-rendered, Chinese
first, no script; every form carries the browser's CSRF token."""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import FileResponse, Response
from starlette.datastructures import UploadFile

from schemas.attachment import MAX_ATTACHMENT_BYTES
from services.common.pages import FORM_TOKEN
from services.portal import forms
from services.portal.attachments import AttachmentRefusedError, Cleaned, cleaned_all
from services.portal.domain import KnownCode
from services.portal.follow_ups import KafkaUnreachableError
from services.portal.intake import ATTACHMENTS_MISSING, answer_of, send_attachments
from services.portal.ratings import Rater
from services.portal.touchpoints import Sheet, verified
from services.portal.web import (
    PageError,
    Portal,
    PortalDep,
    TooManyWrongCodesError,
    UnknownCodeError,
    address_of,
    check_csrf,
    complaint_of,
    page,
)

STYLESHEET = Path(__file__).with_name("static") / "portal.css"
MAX_CODE_CHARACTERS = 100
UNKNOWN_CODE = "查询码无效：请核对后重新输入（区分大小写）/ no complaint has this code"
TOO_MANY = "错误次数过多，请稍后再试 / too many wrong codes: try again later"
KAFKA_DOWN = "系统暂时繁忙，补充内容未能提交，请稍后重试 / nothing was added: retry later"
MAX_FILE_PARTS = 20
"""Files a form may carry before the parser refuses it (400); over MAX_ATTACHMENTS the page
names the field."""

pages = APIRouter(include_in_schema=False)


@pages.get("/static/portal.css")
async def stylesheet() -> FileResponse:
    return FileResponse(STYLESHEET, media_type="text/css")


def _form_token(form: forms.Form) -> str:
    token = forms.one(form, "form_token")
    if not FORM_TOKEN.fullmatch(token):
        raise PageError(status.HTTP_400_BAD_REQUEST, "表单不完整，请重新打开页面")
    return token


@dataclass(frozen=True)
class Posted:
    form: forms.Form
    browser: str
    files: list[UploadFile]
    """The files chosen in the ``attachments`` field (an empty file input sends none)."""


async def _posted(request: Request) -> Posted:
    """The posted form's fields and files, and the browser's id, once its CSRF token checked
    out."""
    data = await request.form(max_files=MAX_FILE_PARTS)
    browser = check_csrf(request, data)
    fields = {key: [v for v in data.getlist(key) if isinstance(v, str)] for key in data}
    files = [v for v in data.getlist("attachments") if isinstance(v, UploadFile) and v.filename]
    return Posted(fields, browser, files)


async def _cleaned(files: list[UploadFile]) -> list[Cleaned]:
    """The files checked and cleaned (off the event loop: decoding a photo takes a while), or
    a FormError naming the field. The file names go no further."""
    contents = [await file.read(MAX_ATTACHMENT_BYTES + 1) for file in files]
    try:
        return await asyncio.to_thread(cleaned_all, contents)
    except AttachmentRefusedError as refused:
        raise forms.FormError([("attachments", f"{refused}，请重新选择文件")]) from None


# --- 投诉举报 The complaint form ---------------------------------------------------------------


@pages.get("/")
async def complaint_form(request: Request) -> Response:
    return page(request, "complaint.html", {"values": {}, "problems": {}})


@pages.post("/")
async def file_complaint(request: Request, portal: PortalDep) -> Response:
    posted = await _posted(request)
    form = posted.form
    values = {key: forms.one(form, key) for key in form}
    try:
        body = forms.complaint(form, form_token=_form_token(form), now=portal.clock())
        files = await _cleaned(posted.files)
    except forms.FormError as error:
        refused = {"values": values, "problems": _labelled(error.problems)}
        return page(request, "complaint.html", refused, status.HTTP_422_UNPROCESSABLE_CONTENT)
    answer = answer_of(await portal.intake.send(forms.COMPLAINT_PATH, body))
    if not answer.accepted or answer.follow_up_code is None:
        why = answer.problem or ""
        problems = [(field.split(".")[-1], why) for field in answer.fields]
        context: dict[str, Any] = {"values": values, "problems": _labelled(problems)}
        context["alert"] = why
        code = status.HTTP_422_UNPROCESSABLE_CONTENT if answer.fields else 503
        return page(request, "complaint.html", context, code)
    arrived = not files or (
        answer.event_id is not None
        and await send_attachments(portal.intake, files, complaint_event_id=answer.event_id)
    )
    filed = {"code": answer.follow_up_code, "attachments": len(files)}
    return page(request, "filed.html", filed | ({} if arrived else {"alert": ATTACHMENTS_MISSING}))


def _labelled(problems: list[tuple[str, str]]) -> dict[str, str]:
    return {field: f"{forms.FIELD_LABELS.get(field, field)}：{why}" for field, why in problems}


# --- 进度查询 The follow-up page ---------------------------------------------------------------


@pages.get("/follow-up")
async def follow_up_form(request: Request) -> Response:
    return page(request, "follow_up_code.html", {})


async def _follow_up(request: Request, portal: Portal, *, adding: bool) -> Response:
    """The follow-up page for the code in the POST body, after adding what it brings when
    ``adding``."""
    posted = await _posted(request)
    code = forms.one(posted.form, "code")[:MAX_CODE_CHARACTERS]
    try:
        known = await complaint_of(portal, address_of(request), code)
    except TooManyWrongCodesError:
        return page(request, "follow_up_code.html", {"alert": TOO_MANY}, 429)
    except UnknownCodeError:
        return page(request, "follow_up_code.html", {"alert": UNKNOWN_CODE}, 404)
    outcome = await _add(portal, known, posted) if adding else {}
    code_status = outcome.pop("status_code", status.HTTP_200_OK)
    context = {"view": await portal.follow_ups.page(known), "code": code, **outcome}
    return page(request, "follow_up.html", context, code_status)


async def _add(portal: Portal, known: KnownCode, posted: Posted) -> dict[str, Any]:
    try:
        text = forms.added_text(posted.form)
        files = await _cleaned(posted.files)
        addition = await portal.follow_ups.add_information(
            known, text, now=portal.clock(), attachments=len(files)
        )
    except forms.FormError as error:
        return {"alert": "；".join(_labelled(error.problems).values()), "status_code": 422}
    except KafkaUnreachableError:
        return {"alert": KAFKA_DOWN, "status_code": 503}
    if files and not await send_attachments(
        portal.intake,
        files,
        complaint_event_id=known.complaint_event_id,
        addition_event_id=addition,
    ):
        return {"alert": f"补充内容已提交；{ATTACHMENTS_MISSING}", "status_code": 503}
    return {"notice": "补充内容已提交 / your information was sent"}


@pages.post("/follow-up")
async def follow_up(request: Request, portal: PortalDep) -> Response:
    return await _follow_up(request, portal, adding=False)


@pages.post("/follow-up/add")
async def add_information(request: Request, portal: PortalDep) -> Response:
    return await _follow_up(request, portal, adding=True)


# --- 扫码评价 Rating from a QR code -----------------------------------------------------------


def _sheet(portal: Portal, touchpoint: str, department: str, signature: str) -> Sheet:
    departments = set(portal.catalogue.departments)
    sheet = verified(portal.qr_key, touchpoint, department, signature, departments)
    if sheet is None:
        raise PageError(
            status.HTTP_404_NOT_FOUND,
            "此二维码无效，请扫描医院张贴的评价二维码 / this QR code is not the hospital's",
        )
    return sheet


@pages.get("/rate/{touchpoint}/{department}/{signature}")
async def rating_form(
    request: Request, portal: PortalDep, touchpoint: str, department: str, signature: str
) -> Response:
    sheet = _sheet(portal, touchpoint, department, signature)
    return page(request, "rate.html", {"sheet": sheet, "values": {}, "problems": {}})


@pages.post("/rate/{touchpoint}/{department}/{signature}")
async def rate(
    request: Request, portal: PortalDep, touchpoint: str, department: str, signature: str
) -> Response:
    sheet = _sheet(portal, touchpoint, department, signature)
    posted = await _posted(request)
    form, device = posted.form, posted.browser
    values = {key: forms.one(form, key) for key in form}
    now = portal.clock()
    try:
        body = forms.rating(form, sheet, form_token=_form_token(form), now=now)
    except forms.FormError as error:
        context = {"sheet": sheet, "values": values, "problems": _labelled(error.problems)}
        return page(request, "rate.html", context, status.HTTP_422_UNPROCESSABLE_CONTENT)
    rater = Rater(device=device, address=address_of(request))
    if not await portal.ratings.take(rater, sheet, now=now):
        portal.metrics.ratings.labels("limited").inc()
        raise PageError(429, "您已评价过，感谢您的反馈 / already rated from this device: thank you")
    answer = answer_of(await portal.intake.send(forms.RATING_PATH, body))
    portal.metrics.ratings.labels("sent" if answer.accepted else "failed").inc()
    if not answer.accepted:
        raise PageError(503, answer.problem or "", back=request.url.path)
    return page(request, "rated.html", {"sheet": sheet})
