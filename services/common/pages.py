"""What every page for people is sent with (the desk's and the reports'): nothing loaded from
another host, no script, no framing, nothing cached (pages hold complaints' words and staff
names)."""

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


async def page_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every answer of a service with pages: no asset from elsewhere, no framing, nothing
    cached. The API docs bring their own policy."""
    response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
