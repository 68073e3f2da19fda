"""HTTP for reporters' attachments: the portal adds files to a complaint (scope
``attachment_write``), the desk lists and reads them (scope ``attachment_read``). The file is
the request's body, its type known by its first bytes; ids and the slot travel in the query
(no secret among them), so the body limit applies to one fixed path."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from schemas.attachment import MAX_ATTACHMENTS, AttachmentId, AttachmentInfo
from services.common.service import wired
from services.intake.api import ErrorDetail
from services.intake.attachments import Attachments, Kept, Upload
from services.intake.auth import ATTACHMENT_READ_SCOPE, ATTACHMENT_WRITE_SCOPE, Caller, CallerDep

MAX_COMPLAINTS_LISTED = 50
PATH = "/v1/attachments"
_KEPT_ANSWERS = {
    Kept.NEW: status.HTTP_201_CREATED,
    Kept.DUPLICATE: status.HTTP_200_OK,
}
_REFUSED = {
    Kept.CONFLICT: (status.HTTP_409_CONFLICT, "slot", "this slot already holds another file"),
    Kept.NO_COMPLAINT: (
        status.HTTP_404_NOT_FOUND,
        "complaint_event_id",
        "intake accepted no complaint with this event id",
    ),
    Kept.REFUSED_TYPE: (
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "body",
        "the content is not a JPEG, PNG or WebP image or a PDF (known by its first bytes)",
    ),
    Kept.TOO_LARGE: (status.HTTP_413_CONTENT_TOO_LARGE, "body", "the file is too large"),
}


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": AttachmentInfo, "description": "The same file was already in this slot."},
    **{
        code: {"model": ErrorDetail, "description": description}
        for code, description in {
            401: "Missing, unknown or revoked API key.",
            403: "The key lacks the scope attachment_write.",
            404: "Intake accepted no complaint with this event id.",
            409: "This slot of the message already holds another file.",
            413: "The file is larger than 10 MB.",
            415: "The content is not a JPEG, PNG or WebP image or a PDF (by its first bytes).",
            422: "A query value is missing or invalid (each problem names it).",
        }.items()
    },
}


class AttachmentList(BaseModel):
    attachments: list[AttachmentInfo]


AttachmentsDep = Annotated[Attachments, Depends(wired(Attachments, "attachments"))]


def _allowed(caller: Caller, scope: str) -> None:
    if scope not in caller.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks the scope {scope}")


router = APIRouter(prefix=PATH, tags=["attachments"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a reporter's file to a complaint (附件)",
    responses=_ANSWERS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def add(
    request: Request,
    response: Response,
    caller: CallerDep,
    attachments: AttachmentsDep,
    complaint_event_id: uuid.UUID,
    slot: Annotated[int, Query(ge=1, le=MAX_ATTACHMENTS)],
    addition_event_id: uuid.UUID | None = None,
) -> AttachmentInfo:
    _allowed(caller, ATTACHMENT_WRITE_SCOPE)
    upload = Upload(complaint_event_id, addition_event_id, slot, await request.body())
    kept, info = await attachments.keep(upload, now=request.app.state.intake.clock())
    if kept in _REFUSED:
        code, field, reason = _REFUSED[kept]
        raise HTTPException(code, [{"field": field, "reason": reason}])
    assert info is not None  # noqa: S101 (kept files have a record)
    response.status_code = _KEPT_ANSWERS[kept]
    return info


@router.get("", summary="The files of complaints (附件列表)")
async def listed(
    caller: CallerDep,
    attachments: AttachmentsDep,
    complaint_event_id: Annotated[list[uuid.UUID], Query(max_length=MAX_COMPLAINTS_LISTED)],
) -> AttachmentList:
    _allowed(caller, ATTACHMENT_READ_SCOPE)
    return AttachmentList(attachments=await attachments.of_complaints(complaint_event_id))


@router.get(
    "/{attachment_id}",
    summary="A file, opened (附件内容)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def content(
    caller: CallerDep, attachments: AttachmentsDep, attachment_id: AttachmentId
) -> StreamingResponse:
    _allowed(caller, ATTACHMENT_READ_SCOPE)
    record = await attachments.record(attachment_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such attachment")
    headers: dict[str, Any] = {
        "Content-Length": str(record.size),
        "Content-Disposition": f'attachment; filename="attachment-{record.slot}.'
        f'{record.content_type.extension}"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(
        attachments.content(record), media_type=record.content_type.value, headers=headers
    )
