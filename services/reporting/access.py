"""Who may read what: machines with report tokens, people signed in at the desk.

- 行风办 conduct office, 纪检监察室 discipline inspection, 院领导 leadership: the hospital.
- 科室负责人 department head: their own department only (never a case against themselves).
- 审计 auditor: aggregates only; no personal data (no case details, no names of staff).

A machine sends a token as ``Authorization: Bearer qlr_…``; tokens are machines' credentials
(``services.common.credentials``) whose grants are a role and a head's department. A person
signs in once, at the desk: the browser sends the desk's session cookie here too (cookies
belong to the host, not the port) and reporting asks the desk who it is
(``services.common.desk_sessions``). A desk session reads (GET); anything that changes what
is kept (confirming a report) takes a token, so no page of another port on this host can make a
signed-in browser change anything here.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.credentials import Credential, Credentials, Grants
from services.common.desk_sessions import (
    DESK_SESSION_COOKIE,
    DeskSessions,
    DeskUnavailableError,
    SignedInPerson,
)
from services.common.documents import Documents
from services.common.roles import REPORT_ROLES, Role
from services.common.service import wired
from services.reporting.store import TOKENS

TOKEN_PREFIX = "qlr"  # noqa: S105 (a public prefix, not a secret)
READS = frozenset({"GET", "HEAD"})


TOKEN_ROLES = (Role.CONDUCT_OFFICE, Role.DEPARTMENT_HEAD, Role.AUDITOR)
"""The roles a report token may have; the others are people's, from the desk."""


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
    who: str
    """The token's id, or ``desk:<username>`` for a person signed in at the desk."""
    role: Role
    department: str | None
    """The department of a department head."""
    name: str | None = None
    """A person's name, as the desk knows it."""
    staff_id: str | None = None
    """A person's staff number: no figure shown to them counts a case against them."""
    sign_out_token: str | None = None
    """A person's desk session's CSRF token, for the desk's sign-out form on the pages."""

    @classmethod
    def of(cls, token_id: str, credential: Credential) -> "Viewer":
        role, department = credential.grants["role"], credential.grants.get("department")
        assert isinstance(role, str), "a report token's grants name its role"  # noqa: S101
        return cls(token_id, Role(role), department if isinstance(department, str) else None)

    @classmethod
    def of_person(cls, person: SignedInPerson) -> "Viewer":
        """A person signed in at the desk; 403 for a desk role without reports (admin)."""
        if person.role not in REPORT_ROLES:
            raise forbidden(f"a {person.role} account ({person.role_zh}) reads no reports")
        role = Role(person.role)
        return cls(
            f"desk:{person.username}",
            role,
            person.department if role is Role.DEPARTMENT_HEAD else None,
            name=person.display_name,
            staff_id=person.staff_id,
            sign_out_token=person.csrf_token,
        )

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


@dataclass(frozen=True)
class Access:
    """Report tokens, and the desk that says who a browser is."""

    tokens: Credentials
    desk: DeskSessions
    desk_page_url: str
    """The desk as browsers reach it (its sign-in page, its case lists)."""

    async def verify(self, token: str) -> Viewer | None:
        verified = await self.tokens.verify(token)
        return None if verified is None else Viewer.of(*verified)

    async def person(self, request: Request) -> Viewer | None:
        """The person signed in at the desk whose browser sent ``request``, if any."""
        session = request.cookies.get(DESK_SESSION_COOKIE)
        if not session:
            return None
        try:
            person = await self.desk.person(session)
        except DeskUnavailableError:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "案件台暂时无法确认登录，请稍后再试 / the desk cannot say who is signed in: "
                "try again later",
            ) from None
        return None if person is None else Viewer.of_person(person)


access = wired(Access, "access")


AccessDep = Annotated[Access, Depends(access)]
_bearer = HTTPBearer(auto_error=False, description="A report token: qlr_…")
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def signed_in(request: Request, access: AccessDep, bearer: Bearer) -> Viewer | None:
    """Who sends the request: by its bearer token, or else (reading only) the person its
    desk session belongs to; None if neither."""
    if bearer:
        return await access.verify(bearer.credentials)
    return await access.person(request) if request.method in READS else None


async def viewer(
    request: Request, bearer: Bearer, found: Annotated[Viewer | None, Depends(signed_in)]
) -> Viewer:
    if found is not None:
        return found
    if bearer is not None:
        reason = "unknown or revoked token"
    elif request.method not in READS:
        reason = "changes take a report token: send Authorization: Bearer <token>"
    elif request.cookies.get(DESK_SESSION_COOKIE):
        reason = "the desk session has ended: sign in again at the desk"
    else:
        reason = "missing token: send Authorization: Bearer <token>, or sign in at the desk"
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


ViewerDep = Annotated[Viewer, Depends(viewer)]
SignedInDep = Annotated[Viewer | None, Depends(signed_in)]
