"""Using the desk as a person does, for the tests of services/desk: signing in through its
forms (CSRF tokens read from the pages), and cases as the router makes them."""

import re
from datetime import datetime

import httpx

from schemas.case import CaseUpdated
from schemas.complaint import ComplaintReceived
from tests.factories import complaint_event, routed_case

HIDDEN = re.compile(r'name="(csrf_token|form_token)" value="([^"]+)"')


def hidden(page: str, name: str = "csrf_token") -> str:
    """The first hidden field of that name in an HTML page."""
    for found, value in HIDDEN.findall(page):
        if found == name:
            return str(value)
    raise AssertionError(f"no {name} in the page")


def form_token(page: str, form: str) -> str:
    """The idempotency token of one action form on a case page (``form-<kind>``)."""
    start = page.index(f'id="form-{form}"')
    return hidden(page[start:], "form_token")


async def sign_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Post the sign-in form as a browser does (its CSRF token from the page and cookie)."""
    login = await http.get("/login")
    return await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": hidden(login.text)},
    )


async def sign_in_anew(
    http: httpx.AsyncClient, username: str, one_time: str, chosen: str
) -> httpx.Response:
    """First sign-in with a one-time password, then choosing one's own; the list's page."""
    answer = await sign_in(http, username, one_time)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/password"
    form = await http.get("/password")
    chosen_answer = await http.post(
        "/password",
        data={"password": chosen, "repeated": chosen, "csrf_token": hidden(form.text)},
    )
    assert chosen_answer.status_code == 303, chosen_answer.text
    return await http.get("/cases")


def complaint_and_case(
    ref: str, *, received_at: datetime, **complaint: object
) -> tuple[ComplaintReceived, CaseUpdated]:
    event = complaint_event(received_at=received_at, source_ref=ref, **complaint)
    return event, routed_case(event)
