"""What every service that serves pages to people sends with them, and how its forms are
protected (the portal; the desk has its own copy in services/desk/web.py for now):

- a Content-Security-Policy that loads nothing from another host and runs no script at all,
  no framing, no referrer, nothing cached (pages hold complaints' words and follow-up codes);
- CSRF: a random token in an HttpOnly, SameSite=Strict cookie that the form must send back in
  a hidden field (double submit), compared in constant time.
"""

import hmac
import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

PAGE_POLICY = "; ".join(
    [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
"""Pages load nothing from another host, and run no script at all."""


def new_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(given: object, expected: str | None) -> bool:
    """Whether a form's CSRF token is the one its cookie (or session) holds."""
    return (
        isinstance(given, str)
        and bool(expected)
        and hmac.compare_digest(given.encode(), (expected or "").encode())
    )


async def page_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every answer: no asset from elsewhere, no framing, no referrer, nothing cached. The API
    docs bring their own policy."""
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
