"""Intake, as another service speaks to it: HTTP with that service's own API key (the desk for
its people's actions, the portal for the public's complaints and ratings), through the same
acceptance path, contract and idempotency as every other system's events. Each service words
intake's answers for its own readers."""

from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr


@dataclass(frozen=True)
class Sent:
    """Intake's answer; ``status`` is None when nothing reached intake (``no_key``: the
    service has no API key configured; otherwise intake could not be reached)."""

    status: int | None
    body: dict[str, Any] = field(default_factory=dict)
    no_key: bool = False

    @property
    def accepted(self) -> bool:
        return self.status in (200, 202)

    @property
    def refused_fields(self) -> tuple[str, ...]:
        """The fields intake refused (422), as it names them (``body.category``)."""
        if self.status != 422:
            return ()
        return tuple(problem.get("field", "") for problem in self.body.get("detail", []))


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

    async def send(self, path: str, body: dict[str, Any]) -> Sent:
        if self.api_key is None:
            return Sent(None, no_key=True)
        headers = {"X-API-Key": self.api_key.get_secret_value()}
        try:
            response = await self.http.post(path, json=body, headers=headers)
        except httpx.TransportError:
            return Sent(None)
        try:
            answer = response.json()
        except ValueError:  # not JSON: a proxy's error page
            answer = {}
        return Sent(response.status_code, answer if isinstance(answer, dict) else {})

    async def close(self) -> None:
        await self.http.aclose()
