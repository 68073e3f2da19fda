"""Intake, as the desk speaks to it: HTTP with the desk's own API key (source system ``desk``),
through the same acceptance path, contract and idempotency as every other system's events."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

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
            event_id = response.json().get("event_id")
            return Answer(True, uuid.UUID(event_id) if event_id else None)
        problem = _PROBLEMS.get(response.status_code, UNAVAILABLE)
        if response.status_code == 422:
            fields = [p.get("field", "") for p in response.json().get("detail", [])]
            problem = f"{problem}: {', '.join(fields)}"
        return Answer(False, problem=problem)

    async def close(self) -> None:
        await self.http.aclose()
