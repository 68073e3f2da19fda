"""Who may read what (roles with report tokens), and the dashboard's signed-in browsers.

- 行风办 conduct office: everything.
- 科室负责人 department head: their own department only.
- 审计 auditor: aggregates only; no personal data (no case details, no names of staff).

A token is sent as ``Authorization: Bearer qlr_…``; tokens are machines' credentials
(``services.common.credentials``) whose grants are a role and a head's department. A browser
signs in at the login page with its token and gets a session instead: the cookie holds a random
session id, never the token. Only SHA-256 digests of tokens and session ids are stored.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from schemas.labels import LabelledEnum
from services.common.credentials import Credential, Credentials, Grants, digest
from services.common.documents import Documents, Records
from services.common.service import Clock
from services.reporting.store import TOKENS, DashboardSession

TOKEN_PREFIX = "qlr"  # noqa: S105 (a public prefix, not a secret)
COOKIE = "qinglian_report_session"


class Role(LabelledEnum):
    CONDUCT_OFFICE = "conduct_office", "行风办"
    DEPARTMENT_HEAD = "department_head", "科室负责人"
    AUDITOR = "auditor", "审计"


def report_tokens(documents: Documents, *, cache_seconds: float) -> Credentials:
    return Credentials(
        documents, collection=TOKENS, prefix=TOKEN_PREFIX, cache_seconds=cache_seconds
    )


def grants(role: Role, department: str | None) -> Grants:
    """A report token's grants; a department head's names the department, no other does."""
    if (role is Role.DEPARTMENT_HEAD) != (department is not None):
        raise ValueError("a department head's token names the department; no other does")
    return {"role": str(role), "department": department}


@dataclass(frozen=True)
class Viewer:
    token_id: str
    role: Role
    department: str | None
    """The department of a department head."""

    @classmethod
    def of(cls, token_id: str, credential: Credential) -> "Viewer":
        role, department = credential.grants["role"], credential.grants.get("department")
        assert isinstance(role, str), "a report token's grants name its role"  # noqa: S101
        return cls(token_id, Role(role), department if isinstance(department, str) else None)

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


class Access:
    """Report tokens and the browsers signed in with them. The cookie holds a random session id
    (HttpOnly, SameSite=Strict, Secure outside development); the store keeps its SHA-256, the
    token it stands for and when it ends. A session ends at sign-out, after ``lifetime``, or
    as soon as its token is revoked."""

    def __init__(
        self,
        tokens: Credentials,
        sessions: Records[DashboardSession],
        *,
        lifetime: timedelta,
        secure: bool,
        clock: Clock,
    ) -> None:
        self.tokens = tokens
        self.sessions = sessions
        self.lifetime = lifetime
        self.secure = secure
        self.clock = clock

    async def verify(self, token: str) -> Viewer | None:
        verified = await self.tokens.verify(token)
        return None if verified is None else Viewer.of(*verified)

    async def sign_in(self, viewer: Viewer, response: Response) -> None:
        session, now = secrets.token_urlsafe(32), self.clock()
        record = DashboardSession(
            token_id=viewer.token_id, created_at=now, expires_at=now + self.lifetime
        )
        await self.sessions.put(digest(session), record)
        response.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=self.secure)

    async def session_viewer(self, session: str) -> Viewer | None:
        """Who the session is, or None once it has ended."""
        record = await self.sessions.get(digest(session))
        if record is None:
            return None
        if record.expires_at <= self.clock():
            await self.sessions.delete(digest(session))
            return None
        # Read afresh, not from the tokens' cache: a revoked token's sessions end at once.
        credential = await self.tokens.records.get(record.token_id)
        if credential is None or credential.revoked_at is not None:
            return None
        return Viewer.of(record.token_id, credential)

    async def sign_out(self, request: Request, response: Response) -> None:
        session = request.cookies.get(COOKIE)
        if session:
            await self.sessions.delete(digest(session))
        response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=self.secure)


def access(request: Request) -> Access:
    """The service's ``Access``, made at wiring (``main.py``)."""
    made: Access = request.app.state.access
    return made


AccessDep = Annotated[Access, Depends(access)]
_bearer = HTTPBearer(auto_error=False, description="A report token: qlr_…")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def signed_in(request: Request, access: AccessDep, bearer: Bearer) -> Viewer | None:
    """Who sends the request, by its bearer token or else its dashboard session; None if
    neither is valid."""
    if bearer:
        return await access.verify(bearer.credentials)
    session = request.cookies.get(COOKIE)
    return await access.session_viewer(session) if session else None


async def viewer(
    request: Request, bearer: Bearer, found: Annotated[Viewer | None, Depends(signed_in)]
) -> Viewer:
    if found is not None:
        return found
    if bearer is not None:
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
