"""``GET /v1/session``: who a browser is signed in as, for another Qinglian service.

One sign-in serves the desk and the reports: cookies belong to the host, not the port, so a
browser signed in to the desk sends the desk's session cookie to reporting too. Reporting
passes that request's ``Cookie`` header on, with its own key (``Authorization: Bearer``, the
file ``QINGLIAN_SESSION_READER_KEY_FILE`` both services are given), and gets the person's
account: 200 with it, 401 for a missing or wrong key, 404 when the browser is not signed in
(no cookie, an ended, forged or expired session, or a disabled account). Asking counts as
using the session (it stays alive).
"""

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status

from services.common.desk_sessions import SignedInPerson
from services.desk.web import COOKIE, DeskDep

session_api = APIRouter(prefix="/v1", tags=["sessions"])


@session_api.get(
    "/session",
    summary="Who the browser that sent this cookie is signed in as (for reporting)",
    responses={
        401: {"description": "Missing or wrong key."},
        404: {"description": "Not signed in."},
    },
)
async def who_is_signed_in(
    request: Request,
    desk: DeskDep,
    authorization: Annotated[str, Header(description="Bearer <the session reader key>")] = "",
) -> SignedInPerson:
    expected = desk.settings.session_reader_key()
    scheme, _, given = authorization.partition(" ")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.encode(), expected.get_secret_value().encode())
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong session reader key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session_id = request.cookies.get(COOKIE)
    found = await desk.sessions.current(session_id) if session_id else None
    if found is None or found[1].password_expired:  # not until they chose their password
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not signed in")
    session, account = found
    return SignedInPerson(
        username=account.username,
        display_name=account.display_name,
        role=str(account.role),
        role_zh=account.role.label_zh,
        department=account.department,
        staff_id=account.staff_id,
        signed_in_at=session.created_at,
        csrf_token=session.csrf_token,
    )
