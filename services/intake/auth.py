"""Who may send what: API keys (services/common/credentials.py), one per source system, each
granted the event types it may send (its scopes)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from services.common.credentials import Credential, Credentials

FOLLOW_UP_REPLY_SCOPE = "follow_up_reply"
"""Scope for the conduct office's replies to reporters (not an event type)."""
ATTACHMENT_WRITE_SCOPE = "attachment_write"
"""Scope for adding a reporter's files to a complaint (the portal's key)."""
ATTACHMENT_READ_SCOPE = "attachment_read"
"""Scope for reading reporters' files (the desk's key: never the public portal's)."""


@dataclass(frozen=True)
class Caller:
    key_id: str
    source_system: str
    scopes: frozenset[str]

    @classmethod
    def of(cls, key_id: str, credential: Credential) -> "Caller":
        scopes = credential.grants.get("scopes") or []
        return cls(key_id, str(credential.grants["source_system"]), frozenset(scopes))

    def may_send(self, event_type: str, source_system: str) -> str | None:
        """Why this caller may not send it, or None if it may."""
        if source_system != self.source_system:
            return f"this key belongs to source system '{self.source_system}'"
        if event_type not in self.scopes:
            return f"this key may not send {event_type} events"
        return None


_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The source system's API key."
)


def _keys(request: Request) -> Credentials:
    keys: Credentials = request.app.state.intake.keys
    return keys


async def authenticated(
    api_key: Annotated[str | None, Depends(_api_key_header)],
    keys: Annotated[Credentials, Depends(_keys)],
) -> Caller:
    if not api_key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send it in the X-API-Key header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    verified = await keys.verify(api_key)
    if verified is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return Caller.of(*verified)


CallerDep = Annotated[Caller, Depends(authenticated)]
