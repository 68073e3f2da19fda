"""Who may send what: API keys, one per source system, scoped to event types.

Only a key's SHA-256 is stored. A verified key is remembered for a short while so that each
request does not cost a store round trip; revocation takes effect within that time.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from services.common.tokens import TokenVerifier, new_token, token_digest
from services.intake.crypto import API_KEY_PREFIX
from services.intake.repository import IntakeStore

FOLLOW_UP_REPLY_SCOPE = "follow_up_reply"
"""Scope for the conduct office's replies to reporters (not an event type)."""


@dataclass(frozen=True)
class Caller:
    key_id: str
    source_system: str
    scopes: frozenset[str]

    def may_send(self, event_type: str, source_system: str) -> str | None:
        """Why this caller may not send it, or None if it may."""
        if source_system != self.source_system:
            return f"this key belongs to source system '{self.source_system}'"
        if event_type not in self.scopes:
            return f"this key may not send {event_type} events"
        return None


class ApiKeys:
    def __init__(self, store: IntakeStore, *, cache_seconds: float) -> None:
        self.store = store
        self._verifier = TokenVerifier(API_KEY_PREFIX, store.api_key, cache_seconds=cache_seconds)

    async def verify(self, api_key: str) -> Caller | None:
        record = await self._verifier.verify(api_key)
        if record is None:
            return None
        return Caller(record["_id"], record["source_system"], frozenset(record["scopes"]))

    async def create(
        self, *, source_system: str, scopes: set[str], label: str, now: datetime
    ) -> tuple[str, str]:
        """Create a key; returns (key id, key). The key itself is never stored or shown again."""
        key_id, api_key = new_token(API_KEY_PREFIX)
        await self.store.create_api_key(
            {
                "_id": key_id,
                "source_system": source_system,
                "scopes": sorted(scopes),
                "label": label,
                "secret_digest": token_digest(api_key),
                "created_at": now,
                "revoked_at": None,
            }
        )
        return key_id, api_key


_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The source system's API key."
)


async def authenticated(
    request: Request, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> Caller:
    if not api_key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send it in the X-API-Key header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    keys: ApiKeys = request.app.state.api_keys
    caller = await keys.verify(api_key)
    if caller is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return caller


CallerDep = Annotated[Caller, Depends(authenticated)]
