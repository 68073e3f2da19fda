"""The API docs pages every service serves (services/common/docs.py), without a browser:
everything they load comes from the service, and the policy they are sent with allows their
own inline script and nothing from elsewhere. tests/integration/test_docs_browser.py renders
them in Chromium with the network cut off."""

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from services.common.docs import DOCS_URL, REDOC_URL, app_with_offline_docs


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = app_with_offline_docs(title="Qinglian test")

    @app.get("/v1/things", summary="Things")
    async def things() -> list[str]:
        return []

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        yield client


@pytest.mark.parametrize("page", [DOCS_URL, REDOC_URL])
async def test_every_script_style_and_icon_a_page_loads_is_served_by_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text
    loaded = re.findall(r'(?:src|href)="([^"]*)"', html)

    assert loaded, "the page loads nothing"
    for url in loaded:
        assert not urlsplit(url).netloc, f"{page} loads {url} from another host"
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url


async def test_the_swagger_ui_set_up_script_is_allowed_by_its_hash_and_no_other_inline_script(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(DOCS_URL)
    (inline,) = re.findall(r"<script>(.*?)</script>", answer.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in answer.headers["content-security-policy"].split(";")
    )

    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"


async def test_swagger_ui_does_not_fetch_a_validator_badge_from_its_makers_site(
    client: httpx.AsyncClient,
) -> None:
    # Swagger UI's default shows a badge from validator.swagger.io for any spec not on
    # localhost, i.e. every service behind the hospital's own host names.
    assert '"validatorUrl": null' in (await client.get(DOCS_URL)).text


async def test_the_docs_pages_and_their_assets_are_not_operations_of_the_api(
    client: httpx.AsyncClient,
) -> None:
    assert set((await client.get("/openapi.json")).json()["paths"]) == {"/v1/things"}
