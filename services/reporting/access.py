"""Who may read what (roles with tokens), and the log of every access to case details.

- 行风办 conduct office: everything.
- 科室负责人 department head: their own department only.
- 审计 auditor: aggregates only; no personal data (no case details, no names of staff).

A token is sent as ``Authorization: Bearer qlr_…``, or, for the dashboard in a browser, in the
cookie the login page sets. Only its SHA-256 is stored.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from schemas.labels import LabelledEnum
from services.common.tokens import TokenVerifier, new_token, token_digest
from services.reporting.repository import ReportRepository

TOKEN_PREFIX = "qlr"  # noqa: S105 (a public prefix, not a secret)
COOKIE = "qinglian_report_token"


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
        if record is None:
            return None
        return Viewer(record["_id"], Role(record["role"]), record.get("department"))

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


_bearer = HTTPBearer(auto_error=False, description="A report token: qlr_…")


async def viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Viewer:
    token = credentials.credentials if credentials else request.cookies.get(COOKIE)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens: ReportTokens = request.app.state.report_tokens
    found = await tokens.verify(token)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


ViewerDep = Annotated[Viewer, Depends(viewer)]
