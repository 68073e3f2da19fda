"""The API docs every service serves, /docs (Swagger UI) and /redoc (ReDoc), working offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on a hospital intranet without a
way out they stay blank. Here the scripts and styles come from the service itself: the copies
fastapi-offline ships (pinned in pyproject.toml), mounted under ``ASSETS_URL``. Each page is sent
with a Content-Security-Policy that allows nothing from another host; its one inline script (the
Swagger UI set-up FastAPI writes) is allowed by its hash, computed from the page as sent.
ReDoc's footer always tries its maker's logo from their CDN and hides it when that fails: the
policy stops it before it becomes a request.
"""

import base64
import hashlib
import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"

SWAGGER_UI_PARAMETERS = {"validatorUrl": None}
"""Swagger UI would otherwise show a badge fetched from validator.swagger.io for any spec not
on localhost."""

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(page: bytes) -> str:
    """The Content-Security-Policy of a docs page: this server only, and its inline scripts
    by hash. Styles may be inline: ReDoc inserts its <style> elements as it renders."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(page)
    ]
    return "; ".join(
        [
            "default-src 'none'",
            " ".join(["script-src 'self'", *hashes]),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",  # the OpenAPI document, and "Try it out"
            "worker-src 'self' blob:",  # ReDoc's search index
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = docs_policy(bytes(page.body))
    return page


Render = Callable[..., HTMLResponse]

_SWAGGER_UI_ASSETS = {
    "swagger_js_url": "swagger-ui-bundle.js",
    "swagger_css_url": "swagger-ui.css",
    "swagger_favicon_url": "favicon.png",
}
_REDOC_ASSETS = {"redoc_js_url": "redoc.standalone.js", "redoc_favicon_url": "favicon.png"}


def app_with_offline_docs(*, title: str, **options: object) -> FastAPI:
    """A FastAPI app whose /docs and /redoc need nothing but the service itself."""
    app = FastAPIOffline(
        title=title,
        docs_url=None,
        redoc_url=None,
        static_url=ASSETS_URL,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        **options,
    )

    def page(
        request: Request, render: Render, name: str, assets: dict[str, str], **more: Any
    ) -> HTMLResponse:
        """FastAPI's docs page ``render``, its ``assets`` (files) served from here."""
        root = request.scope.get("root_path", "")
        served = {option: f"{root}{ASSETS_URL}/{file}" for option, file in assets.items()}
        return _with_policy(
            render(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{title} — {name}",
                **served,
                **more,
            )
        )

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        parameters = app.swagger_ui_parameters
        return page(
            request,
            get_swagger_ui_html,
            "Swagger UI",
            _SWAGGER_UI_ASSETS,
            oauth2_redirect_url=None,
            swagger_ui_parameters=parameters,
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return page(request, get_redoc_html, "ReDoc", _REDOC_ASSETS, with_google_fonts=False)

    return app
