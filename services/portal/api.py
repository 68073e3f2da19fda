"""HTTP: a reporter follows their complaint with the code intake gave them (header
``X-Follow-Up-Code``, never in a URL): its status and the office's replies, and information
they add. A wrong code and an unknown one get the same answer; past the wrong codes allowed,
a client gets 429 for every code of that code's group, right or wrong."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import BaseModel

from schemas import topics
from schemas.base import Contract
from schemas.dead_letter import Problem
from schemas.follow_up import FollowUpText, ReporterAddition
from services.portal.domain import FollowUpView, KnownCode
from services.portal.follow_ups import KafkaUnreachableError
from services.portal.web import (
    Portal,
    PortalDep,
    TooManyWrongCodesError,
    UnknownCodeError,
    address_of,
    complaint_of,
)

PUBLISHED: dict[str, type[BaseModel]] = {topics.REPORTER_ADDITIONS: ReporterAddition}
"""What the portal publishes: what reporters add to their complaints."""

FollowUpCode = Annotated[
    str, Header(alias="X-Follow-Up-Code", description="The code given with the complaint.")
]


class Addition(Contract):
    text: FollowUpText


class ErrorDetail(BaseModel):
    detail: str | list[Problem]


_ERROR_DESCRIPTIONS = {
    400: "The body is not UTF-8, not readable as JSON, or nested too deeply.",
    404: "No complaint has this follow-up code.",
    413: "The body is larger than allowed.",
    422: "Invalid: each problem names the field and the reason.",
    429: "Too many wrong follow-up codes from this address for codes of this code's group.",
    503: "Kafka or the store is unavailable; nothing was added.",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorDetail, "description": description}
    for code, description in _ERROR_DESCRIPTIONS.items()
}

router = APIRouter(prefix="/v1")


async def _complaint_of(request: Request, code: str, portal: Portal) -> KnownCode:
    try:
        return await complaint_of(portal, address_of(request), code)
    except TooManyWrongCodesError as error:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many wrong follow-up codes; try again later",
            headers={"Retry-After": str(error.retry_after_seconds)},
        ) from None
    except UnknownCodeError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "no complaint has this follow-up code"
        ) from None


@router.get(
    "/follow-up",
    summary="A reporter follows their complaint (举报人查询)",
    responses={code: _ERRORS[code] for code in (400, 404, 413, 422, 429, 503)},
)
async def follow_up(request: Request, code: FollowUpCode, portal: PortalDep) -> FollowUpView:
    return await portal.follow_ups.view(await _complaint_of(request, code, portal))


@router.post(
    "/follow-up/additions",
    status_code=status.HTTP_202_ACCEPTED,
    summary="A reporter adds information to their complaint (补充材料)",
    responses={code: _ERRORS[code] for code in (400, 404, 413, 422, 429, 503)},
)
async def add_information(
    request: Request, code: FollowUpCode, addition: Addition, portal: PortalDep
) -> dict[str, str]:
    known = await _complaint_of(request, code, portal)
    try:
        await portal.follow_ups.add_information(known, addition.text, now=portal.clock())
    except KafkaUnreachableError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the event bus is unavailable; nothing was added, retry later",
        ) from None
    return {"status": "received"}
