"""Intake's answers to the desk (``services.common.intake_client``, with the desk's own API key,
source system ``desk``), worded for the desk's people."""

import uuid
from dataclasses import dataclass

from services.common.intake_client import Sent

NO_KEY = "案件台未配置接入密钥（QINGLIAN_INTAKE_API_KEY_FILE），无法提交 / the desk has no API key"
UNAVAILABLE = (
    "受理服务暂不可用，未提交，请稍后重试 / intake is unavailable: nothing was sent, retry"
)
_PROBLEMS = {
    401: "案件台的接入密钥无效 / the desk's API key is unknown or revoked",
    403: "案件台的接入密钥无权提交此类事件 / the desk's API key lacks this scope",
    404: "该案件没有可答复的举报人 / this case has no reporter to reply to",
    409: "此表单已提交过不同内容 / this form was already sent with other content",
    413: "内容过长 / too long",
    422: "内容不符合规范 / refused by the contract",
}


@dataclass(frozen=True)
class Answer:
    accepted: bool
    event_id: uuid.UUID | None = None
    problem: str | None = None


def answer_of(sent: Sent) -> Answer:
    """Intake's answer, worded for the desk's people."""
    if sent.accepted:
        event_id = sent.body.get("event_id")
        return Answer(True, uuid.UUID(event_id) if event_id else None)
    if sent.no_key:
        return Answer(False, problem=NO_KEY)
    problem = _PROBLEMS.get(sent.status or 0, UNAVAILABLE)
    if sent.refused_fields:
        problem = f"{problem}: {', '.join(sent.refused_fields)}"
    return Answer(False, problem=problem)
