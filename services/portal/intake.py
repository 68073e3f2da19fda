"""Intake's answers to the portal (``services.common.intake_client``, with the portal's own API
key, source system ``portal``), worded for the public. Intake seals the contact and makes the
follow-up code; the portal, facing the public network, holds neither the contact key nor any
complaint."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.intake_client import IntakeClient, Sent
from services.portal.attachments import Cleaned

NO_KEY = "本平台尚未配置受理接入密钥，未能提交，请改用电话或信箱反映"
UNAVAILABLE = "受理服务暂不可用，未能提交，请稍后重试"
ATTACHMENTS_PATH = "/v1/attachments"
ATTACHMENTS_MISSING = (
    "附件未能全部提交：请凭查询码在进度查询页重新上传 / "
    "some files did not arrive: add them again on the follow-up page"
)
_PROBLEMS = {
    409: "此表单已提交过不同内容，请重新填写",
    413: "内容过长",
    422: "内容不符合要求",
}


@dataclass(frozen=True)
class Answer:
    accepted: bool
    follow_up_code: str | None = None
    event_id: uuid.UUID | None = None
    problem: str | None = None
    fields: tuple[str, ...] = ()
    """The fields intake refused (422), as it names them (``body.category``)."""


def answer_of(sent: Sent) -> Answer:
    """Intake's answer, worded for the public."""
    if sent.accepted:
        event_id = sent.body.get("event_id")
        return Answer(
            True,
            follow_up_code=sent.body.get("follow_up_code"),
            event_id=uuid.UUID(event_id) if event_id else None,
        )
    if sent.no_key:
        return Answer(False, problem=NO_KEY)
    problem = _PROBLEMS.get(sent.status or 0, UNAVAILABLE)
    return Answer(False, problem=problem, fields=sent.refused_fields)


async def send_attachments(
    intake: IntakeClient,
    files: Sequence[Cleaned],
    *,
    complaint_event_id: uuid.UUID,
    addition_event_id: uuid.UUID | None = None,
) -> bool:
    """Each cleaned file to intake, in its slot (1, 2, …) of its message; whether all arrived.
    A slot keeps one file, so a form sent again sends no file twice. One after the other:
    storing 10 MB takes intake about a second, each request within the client's timeout."""
    message = {"complaint_event_id": str(complaint_event_id)}
    if addition_event_id is not None:
        message["addition_event_id"] = str(addition_event_id)
    arrived = True
    for slot, file in enumerate(files, start=1):
        sent = await intake.send_file(ATTACHMENTS_PATH, file.content, message | {"slot": str(slot)})
        arrived = arrived and sent.accepted
    return arrived
