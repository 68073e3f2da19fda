"""Bearer secrets (API keys, report tokens): shown once, stored only as their SHA-256, looked
up by the public id they carry, and remembered for a short while once verified."""

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from services.common.store import Document


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> tuple[str, str]:
    """A new token as (token id, whole token). The id is public; the token is shown once."""
    token_id = secrets.token_hex(6)
    return token_id, f"{prefix}_{token_id}_{secrets.token_urlsafe(32)}"


def token_id(token: str, prefix: str) -> str | None:
    """The id inside a token, or None if it is not shaped like one of ``prefix``."""
    found_prefix, _, rest = token.partition("_")
    found_id, _, secret = rest.partition("_")
    if found_prefix != prefix or len(found_id) != 12 or not secret:
        return None
    return found_id


class TokenVerifier:
    """Checks tokens against their stored records ``{_id, secret_digest, revoked_at, …}``.

    A verified token is remembered for ``cache_seconds``, so revoking one takes up to that long.
    """

    def __init__(
        self,
        prefix: str,
        lookup: Callable[[str], Awaitable[Document | None]],
        *,
        cache_seconds: float,
    ) -> None:
        self.prefix = prefix
        self.lookup = lookup
        self.cache_seconds = cache_seconds
        self._verified: dict[str, tuple[float, Document]] = {}

    async def verify(self, token: str) -> Document | None:
        """The token's record, or None for an unknown, malformed or revoked token."""
        digest = token_digest(token)
        cached = self._verified.get(digest)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        found_id = token_id(token, self.prefix)
        record = await self.lookup(found_id) if found_id else None
        if (
            record is None
            or record.get("revoked_at") is not None
            or not hmac.compare_digest(record["secret_digest"], digest)
        ):
            self._verified.pop(digest, None)
            return None
        self._verified[digest] = (time.monotonic(), record)
        return record
