"""Reporters' attachments on the case page: the list of a case's files, and each file, read
from intake with the desk's key (scope ``attachment_read``) for a person allowed to see the
case, and only through that case. Intake keeps them sealed; the desk keeps nothing of them.

A file is handed over as a download, never shown inline: ``Content-Disposition: attachment``,
the type intake found by its content, ``X-Content-Type-Options: nosniff``, and the desk's
Content-Security-Policy, so a file crafted to look like a page runs nothing on the desk.
"""

from fastapi import APIRouter, status
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from schemas.attachment import AttachmentInfo
from schemas.case import CaseUpdated
from services.common.intake_client import IntakeClient
from services.desk.web import DeskDep, DeskUserDep, PageError

ATTACHMENTS_PATH = "/v1/attachments"
UNAVAILABLE = "附件暂时无法读取，请稍后再试 / the files cannot be read now: try again later"
NOT_FOUND = "没有这个附件 / no such file"
_PASSED_ON = ("content-type", "content-length", "content-disposition")

attachment_pages = APIRouter(include_in_schema=False)


async def attachments_of(intake: IntakeClient, case: CaseUpdated) -> list[AttachmentInfo] | None:
    """The files of the case's complaints and of what their reporters added; None when intake
    cannot say (no key, unreachable, refused)."""
    if not case.source_event_ids:
        return []
    ids = [str(event_id) for event_id in case.source_event_ids]
    sent = await intake.ask(ATTACHMENTS_PATH, {"complaint_event_id": ids})
    if sent.status != status.HTTP_200_OK:
        return None
    try:
        return [AttachmentInfo.model_validate(item) for item in sent.body["attachments"]]
    except (KeyError, TypeError, ValidationError):
        return None


@attachment_pages.get("/cases/{case_id}/attachments/{attachment_id}")
async def attachment(
    desk: DeskDep, signed: DeskUserDep, case_id: str, attachment_id: str
) -> Response:
    """A file of the case, for a person who may see the case; any other case's file, or a
    case they may not see, answers 404 as a missing one does."""
    intake = desk.casework.intake
    case = await desk.casework.visible_case(signed.viewer, case_id)
    if case is None:
        raise PageError(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    listed = await attachments_of(intake, case)
    if listed is None:
        raise PageError(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE)
    if attachment_id not in {info.attachment_id for info in listed}:
        raise PageError(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    answer = await intake.open_stream(f"{ATTACHMENTS_PATH}/{attachment_id}")
    if answer is None or answer.status_code != status.HTTP_200_OK:
        if answer is not None:
            await answer.aclose()
        raise PageError(status.HTTP_503_SERVICE_UNAVAILABLE, UNAVAILABLE)
    headers = {name: answer.headers[name] for name in _PASSED_ON if name in answer.headers}
    headers["X-Content-Type-Options"] = "nosniff"
    return StreamingResponse(
        answer.aiter_bytes(), headers=headers, background=BackgroundTask(answer.aclose)
    )
