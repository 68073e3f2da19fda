"""Who may read what (roles with tokens), and the log of every access to case details.

- 行风办 conduct office: everything.
- 科室负责人 department head: their own department only.
- 审计 auditor: aggregates only; no personal data (no case details, no names of staff).

A token is sent as ``Authorization: Bearer qlr_…``. A browser signs in at the login page with
its token and gets a session instead: the cookie holds a random session id, never the token.
Only SHA-256 digests of tokens and session ids are stored.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from schemas.labels import LabelledEnum
from services.common.store import Document
from services.common.tokens import TokenVerifier, new_token, token_digest
from services.reporting.repository import ReportRepository

TOKEN_PREFIX = "qlr"  # noqa: S105 (a public prefix, not a secret)
COOKIE = "qinglian_report_session"


class Role(LabelledEnum):
    CONDUCT_OFFICE = "conduct_office", "行风办"
    DEPARTMENT_HEAD = "department_head", "科室负责人"
    AUDITOR = "auditor", "审计"


@dataclass(frozen=True)
class Viewer:
    token_id: str
    role: Role
    department: str | None
    """The department of a department head."""

    def department_scope(self, asked: str | None) -> str | None:
        """The department this viewer reads when asking for ``asked`` (None: the hospital);
        raises 403 when it is not theirs to read."""
        if self.role is Role.DEPARTMENT_HEAD:
            if asked not in (None, self.department):
                raise forbidden("a department head reads only their own department")
            return self.department
        return asked

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = "、".join(role.label_zh for role in roles)
            raise forbidden(f"only {', '.join(roles)} ({allowed}) may read this")


def forbidden(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, reason)


class ReportTokens:
    def __init__(self, reports: ReportRepository, *, cache_seconds: float) -> None:
        self.reports = reports
        self._verifier = TokenVerifier(TOKEN_PREFIX, reports.token, cache_seconds=cache_seconds)

    async def verify(self, token: str) -> Viewer | None:
        record = await self._verifier.verify(token)
        return None if record is None else _viewer(record)

    async def create(
        self, *, role: Role, department: str | None, label: str, now: datetime
    ) -> tuple[str, str]:
        """Create a token; returns (token id, token). The token is never stored or shown again."""
        if (role is Role.DEPARTMENT_HEAD) != (department is not None):
            raise ValueError("a department head's token names the department; no other does")
        token_id, token = new_token(TOKEN_PREFIX)
        await self.reports.create_token(
            {
                "_id": token_id,
                "role": str(role),
                "department": department,
                "label": label,
                "secret_digest": token_digest(token),
                "created_at": now,
                "revoked_at": None,
            }
        )
        return token_id, token


def _viewer(token: Document) -> Viewer:
    return Viewer(token["_id"], Role(token["role"]), token.get("department"))


class DashboardSessions:
    """Browsers signed in to the dashboard. The cookie holds a random session id (HttpOnly,
    SameSite=Strict, Secure outside development); the store keeps its SHA-256, the token it
    stands for and when it ends. A session ends at sign-out, after ``lifetime``, or as soon as
    its token is revoked."""

    def __init__(
        self,
        reports: ReportRepository,
        *,
        lifetime: timedelta,
        secure: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self.reports = reports
        self.lifetime = lifetime
        self.secure = secure
        self.clock = clock

    async def sign_in(self, viewer: Viewer, response: Response) -> None:
        session, now = secrets.token_urlsafe(32), self.clock()
        await self.reports.create_dashboard_session(
            {
                "_id": token_digest(session),
                "token_id": viewer.token_id,
                "created_at": now,
                "expires_at": now + self.lifetime,
            }
        )
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=self.secure)

    async def viewer(self, session: str) -> Viewer | None:
        """Who the session is, or None once it has ended."""
        digest = token_digest(session)
        record = await self.reports.dashboard_session(digest)
        if record is None:
            return None
        if record["expires_at"] <= self.clock():
            await self.reports.delete_dashboard_session(digest)
            return None
        token = await self.reports.token(record["token_id"])
        if token is None or token.get("revoked_at") is not None:
            return None
        return _viewer(token)

    async def sign_out(self, request: Request, response: Response) -> None:
        session = request.cookies.get(COOKIE)
        if session:
            await self.reports.delete_dashboard_session(token_digest(session))
        response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=self.secure)


_bearer = HTTPBearer(auto_error=False, description="A report token: qlr_…")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def signed_in(request: Request, credentials: Credentials) -> Viewer | None:
    """Who sends the request, by its bearer token or else its dashboard session; None if
    neither is valid."""
    if credentials:
        tokens: ReportTokens = request.app.state.report_tokens
        return await tokens.verify(credentials.credentials)
    session = request.cookies.get(COOKIE)
    if not session:
        return None
    sessions: DashboardSessions = request.app.state.dashboard_sessions
    return await sessions.viewer(session)


async def viewer(
    request: Request,
    credentials: Credentials,
    found: Annotated[Viewer | None, Depends(signed_in)],
) -> Viewer:
    if found is not None:
        return found
    if credentials is not None:
        reason = "unknown or revoked token"
    elif request.cookies.get(COOKIE):
        reason = "the session has ended: sign in again at /login"
    else:
        reason = "missing token: send Authorization: Bearer <token>"
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


ViewerDep = Annotated[Viewer, Depends(viewer)]
SignedInDep = Annotated[Viewer | None, Depends(signed_in)]
