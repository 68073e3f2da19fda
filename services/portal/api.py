"""HTTP: a reporter follows their complaint with the code intake gave them (header
``X-Follow-Up-Code``, never in a URL): its status and the office's replies, and information
they add. A wrong code and an unknown one get the same answer; past the wrong codes allowed,
a client gets 429 for every code of that code's group, right or wrong."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import BaseModel

from schemas import topics
from schemas.base import Contract
from schemas.dead_letter import Problem
from schemas.follow_up import FollowUpText, ReporterAddition
from services.common.service import Clock
from services.portal.domain import FollowUpView, KnownCode
from services.portal.follow_ups import FollowUps, KafkaUnreachableError
from services.portal.wrong_codes import WrongCodeLimit

PUBLISHED: dict[str, type[BaseModel]] = {topics.REPORTER_ADDITIONS: ReporterAddition}
"""What the portal publishes: what reporters add to their complaints."""


@dataclass(frozen=True)
class PortalApi:
    """What the routes work with (``app.state.portal``, set by main.py)."""

    follow_ups: FollowUps
    wrong_codes: WrongCodeLimit
    clock: Clock


def _portal(request: Request) -> PortalApi:
    portal: PortalApi = request.app.state.portal
    return portal


PortalDep = Annotated[PortalApi, Depends(_portal)]
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


async def _complaint_of(request: Request, code: str, portal: PortalApi) -> KnownCode:
    """The complaint of a code. The client is the connecting address (or what a trusted
    proxy says it is: services.common.service.serve)."""
    limit = portal.wrong_codes
    key = limit.key(request.client.host if request.client else "unknown", code)
    now = portal.clock()
    if await limit.exhausted(key, now=now):
        raise _too_many(limit)
    known = await portal.follow_ups.known(code)
    if known is not None:
        return known
    if not await limit.still_allowed_after(key, now=now):
        raise _too_many(limit)
    raise HTTPException(status.HTTP_404_NOT_FOUND, "no complaint has this follow-up code")


def _too_many(limit: WrongCodeLimit) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        "too many wrong follow-up codes; try again later",
        headers={"Retry-After": str(int(limit.window.total_seconds()))},
    )


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
