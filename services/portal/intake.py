"""Intake's answers to the portal (``services.common.intake_client``, with the portal's own API
key, source system ``portal``), worded for the public. Intake seals the contact and makes the
follow-up code; the portal, facing the public network, holds neither the contact key nor any
complaint."""

from dataclasses import dataclass

from services.common.intake_client import Sent

NO_KEY = "本平台尚未配置受理接入密钥，未能提交，请改用电话或信箱反映"
UNAVAILABLE = "受理服务暂不可用，未能提交，请稍后重试"
_PROBLEMS = {
    409: "此表单已提交过不同内容，请重新填写",
    413: "内容过长",
    422: "内容不符合要求",
}


@dataclass(frozen=True)
class Answer:
    accepted: bool
    follow_up_code: str | None = None
    problem: str | None = None
    fields: tuple[str, ...] = ()
    """The fields intake refused (422), as it names them (``body.category``)."""


def answer_of(sent: Sent) -> Answer:
    """Intake's answer, worded for the public."""
    if sent.accepted:
        return Answer(True, follow_up_code=sent.body.get("follow_up_code"))
    if sent.no_key:
        return Answer(False, problem=NO_KEY)
    problem = _PROBLEMS.get(sent.status or 0, UNAVAILABLE)
    return Answer(False, problem=problem, fields=sent.refused_fields)
