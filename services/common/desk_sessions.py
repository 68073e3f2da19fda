"""One sign-in for the desk and the reports: who a browser is signed in as at the desk.

Cookies belong to the host, not the port, so a browser signed in to the desk (8105) sends the
desk's session cookie to reporting (8104) too. Reporting does not read the desk's store: it
asks the desk's ``GET /v1/session`` with that cookie and a key of its own (``Authorization:
Bearer``, the file ``QINGLIAN_SESSION_READER_KEY_FILE`` both services are given). The desk
answers the person (200), a wrong key (401) or "not signed in" (404).
"""

import hashlib
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime

import httpx
from pydantic import BaseModel, SecretStr

logger = logging.getLogger(__name__)

DESK_SESSION_COOKIE = "qinglian_desk_session"
"""The desk's session cookie: a random id, HttpOnly, SameSite=Strict."""
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,128}")
"""What a desk session id looks like (``secrets.token_urlsafe``); anything else is no session."""


class SignedInPerson(BaseModel):
    """A person signed in at the desk, as ``GET /v1/session`` answers."""

    username: str
    display_name: str
    role: str
    """The desk's role: conduct_office, discipline_inspection, department_head, leadership,
    auditor or admin."""
    role_zh: str
    department: str | None
    """The department of a department head."""
    staff_id: str | None
    signed_in_at: datetime
    csrf_token: str
    """The session's CSRF token: a page of the reports carries it in the desk's sign-out form,
    so a person signs out from there too."""


class DeskUnavailableError(RuntimeError):
    """The desk could not say who is signed in (unreachable, or it refused the key)."""


class DeskSessions:
    """Asks the desk who a session cookie belongs to. Answers are kept ``cache_seconds`` (a
    page and the requests right after it cost one question), under the SHA-256 of the session
    id, never the id itself; a sign-out at the desk takes effect here within that time."""

    def __init__(
        self,
        desk_url: str,
        key: SecretStr | None,
        *,
        cache_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.cache_seconds = cache_seconds
        self.monotonic = monotonic
        self.http = httpx.AsyncClient(base_url=desk_url, timeout=5, transport=transport)
        self._answers: dict[str, tuple[float, SignedInPerson | None]] = {}

    async def person(self, session_id: str) -> SignedInPerson | None:
        """Who holds this desk session, or None when it is no (longer a) signed-in one."""
        if not SESSION_ID.fullmatch(session_id):
            return None
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        now = self.monotonic()
        cached = self._answers.get(digest)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        found = await self._ask(session_id)
        self._answers = {
            kept: answer
            for kept, answer in self._answers.items()
            if now - answer[0] < self.cache_seconds
        }
        self._answers[digest] = (now, found)
        return found

    async def _ask(self, session_id: str) -> SignedInPerson | None:
        if self.key is None:
            raise DeskUnavailableError("no session reader key: QINGLIAN_SESSION_READER_KEY_FILE")
        try:
            answer = await self.http.get(
                "/v1/session",
                headers={
                    "Authorization": f"Bearer {self.key.get_secret_value()}",
                    "Cookie": f"{DESK_SESSION_COOKIE}={session_id}",
                },
            )
        except httpx.HTTPError as error:
            raise DeskUnavailableError(
                f"the desk cannot be reached ({type(error).__name__})"
            ) from None
        if answer.status_code == httpx.codes.NOT_FOUND:
            return None
        if answer.status_code != httpx.codes.OK:
            logger.error("the desk answered %d to the session question", answer.status_code)
            raise DeskUnavailableError(f"the desk answered {answer.status_code}")
        return SignedInPerson.model_validate_json(answer.content)

    async def close(self) -> None:
        await self.http.aclose()
