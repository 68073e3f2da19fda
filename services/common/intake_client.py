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
        return self.status in (200, 201, 202)

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
        return await self._exchange("POST", path, json=body)

    async def send_file(self, path: str, content: bytes, params: dict[str, str]) -> Sent:
        """A file as the request's body (intake knows its type by its first bytes)."""
        headers = {"Content-Type": "application/octet-stream"}
        return await self._exchange("POST", path, content=content, params=params, headers=headers)

    async def ask(self, path: str, params: dict[str, Any]) -> Sent:
        return await self._exchange("GET", path, params=params)

    async def open_stream(self, path: str) -> httpx.Response | None:
        """A GET whose body is read as it comes (the caller closes it: ``aclose``); None when
        there is no key or intake is unreachable."""
        if self.api_key is None:
            return None
        request = self.http.build_request("GET", path, headers=self._headers())
        try:
            return await self.http.send(request, stream=True)
        except httpx.TransportError:
            return None

    def _headers(self) -> dict[str, str]:
        assert self.api_key is not None  # noqa: S101 (asked only with a key)
        return {"X-API-Key": self.api_key.get_secret_value()}

    async def _exchange(self, method: str, path: str, **request: Any) -> Sent:
        if self.api_key is None:
            return Sent(None, no_key=True)
        headers = self._headers() | request.pop("headers", {})
        try:
            response = await self.http.request(method, path, headers=headers, **request)
        except httpx.TransportError:
            return Sent(None)
        try:
            answer = response.json()
        except ValueError:  # not JSON: a proxy's error page
            answer = {}
        return Sent(response.status_code, answer if isinstance(answer, dict) else {})

    async def close(self) -> None:
        await self.http.aclose()
