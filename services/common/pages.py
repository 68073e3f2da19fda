"""What every page for people is sent with (the desk's, the reports' and the portal's), and how
their forms are protected:

- a Content-Security-Policy that loads nothing from another host and runs no script at all, no
  framing, no referrer, nothing cached (pages hold complaints' words, staff names and follow-up
  codes);
- CSRF: a random token the form must send back in a hidden field, compared in constant time
  with the one its cookie or session holds.
"""

import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request, Response

Middleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


def page_policy(*form_targets: str) -> str:
    """The Content-Security-Policy of the pages: nothing from another host, no script at all;
    forms go to this server, and to the origins of ``form_targets`` (a form's answer may
    lead there: the desk's sign-in back to the reports)."""
    origins = sorted({f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in form_targets})
    return "; ".join(
        [
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self'",
            " ".join(["form-action 'self'", *origins]),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def page_headers(policy: str) -> Middleware:
    """A middleware for every answer of a service with pages: ``policy``, no framing, nothing
    cached. The API docs bring their own policy."""

    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    return headers


def new_token() -> str:
    return secrets.token_urlsafe(24)


FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""A form's one-time token as a page sends it back (``new_token`` makes 32 characters):
checked before it keys anything stored."""


def csrf_matches(given: object, expected: str | None) -> bool:
    """Whether a form's CSRF token is the one its cookie (or session) holds."""
    return (
        isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(given.encode(), (expected or "").encode())
    )
