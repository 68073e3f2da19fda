"""Intake, as the portal speaks to it: HTTP with the portal's own API key (source system
``portal``), through the same acceptance path, contract and idempotency as every other
system's complaints and ratings. Intake seals the contact and makes the follow-up code; the
portal, facing the public network, holds neither the contact key nor any complaint."""

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

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


class IntakeClient:
    def __init__(
        self,
        base_url: str,
        api_key: SecretStr | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_key = api_key
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10, transport=transport)

    async def send(self, path: str, body: dict[str, Any]) -> Answer:
        if self.api_key is None:
            return Answer(False, problem=NO_KEY)
        headers = {"X-API-Key": self.api_key.get_secret_value()}
        try:
            response = await self.http.post(path, json=body, headers=headers)
        except httpx.TransportError:
            return Answer(False, problem=UNAVAILABLE)
        if response.status_code in (200, 202):
            return Answer(True, follow_up_code=response.json().get("follow_up_code"))
        fields: tuple[str, ...] = ()
        if response.status_code == 422:
            fields = tuple(p.get("field", "") for p in response.json().get("detail", []))
        return Answer(
            False, problem=_PROBLEMS.get(response.status_code, UNAVAILABLE), fields=fields
        )

    async def close(self) -> None:
        await self.http.aclose()
