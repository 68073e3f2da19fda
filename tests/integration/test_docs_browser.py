"""Every service's API docs (/docs and /redoc) in a real browser on a machine with no way out,
as on a hospital intranet: Debian's Chromium, headless, driven by Playwright, with every request
to another host refused and recorded.

The services are built by their own ``create_app`` and served without their lifespan: the
pages need neither the broker nor the store.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from services.escalation.main import create_app as escalation_app
from services.escalation.settings import EscalationSettings
from services.intake.crypto import new_key
from services.intake.main import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.portal.main import create_app as portal_app
from services.portal.settings import PortalSettings
from services.reporting.main import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.router.main import create_app as router_app
from services.router.settings import RouterSettings
from tests.integration.test_dashboard_browser import CHROMIUM, CHROMIUM_FLAGS
from tests.waiting import eventually

SERVICES: dict[str, Callable[[], FastAPI]] = {
    "intake": lambda: intake_app(IntakeSettings(contact_key=new_key())),
    "router": lambda: router_app(RouterSettings()),
    "escalation": lambda: escalation_app(EscalationSettings()),
    "reporting": lambda: reporting_app(ReportingSettings()),
    "portal": lambda: portal_app(PortalSettings(portal_key="k" * 32)),
}
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the module (the dashboard test's launches one per test)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run deploy/local/setup.sh (Debian's chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(params=sorted(SERVICES))
async def served(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """The service's app on a free loopback port; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            SERVICES[request.param](), host=LOOPBACK, port=0, lifespan="off", log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or serving.done(), what="the service to start")
        assert not serving.done(), "the service did not start"
        yield f"http://{LOOPBACK}:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=30)


@dataclass
class Offline:
    """A page whose requests to other hosts are refused, as an intranet without a way out
    would, and kept for the test to look at."""

    page: Page
    elsewhere: list[str] = field(default_factory=list)
    refused_by_policy: list[str] = field(default_factory=list)

    async def refuse_other_hosts(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == LOOPBACK:
            await route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    def note(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused_by_policy.append(message.text)


@pytest.fixture
async def offline(browser: Browser) -> AsyncIterator[Offline]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    offline = Offline(page)
    await context.route("**/*", offline.refuse_other_hosts)
    page.on("console", offline.note)
    try:
        yield offline
    finally:
        await context.close()


async def operations(base: str) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=base) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def assert_nothing_left_this_machine(offline: Offline, *, expected_refusals: str = "") -> None:
    assert offline.elsewhere == [], f"the page asked other hosts: {offline.elsewhere}"
    unexpected = [
        text
        for text in offline.refused_by_policy
        if not expected_refusals or expected_refusals not in text
    ]
    assert unexpected == [], f"the policy refused what the page needs: {unexpected}"


def assert_the_policy_allows_nothing_from_elsewhere(policy: str | None) -> None:
    assert policy, "no Content-Security-Policy"
    directives = dict(directive.strip().split(" ", 1) for directive in policy.split(";"))
    assert directives["default-src"] == "'none'"
    for sources in directives.values():
        for source in sources.split():
            # Only this server, inline data the page itself makes, or hashes of its own scripts.
            assert source in {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"} or (
                source.startswith("'sha256-")
            ), policy
    assert "'unsafe-inline'" not in directives["script-src"]


async def test_swagger_ui_shows_every_operation_with_nothing_from_another_host(
    served: str, offline: Offline
) -> None:
    expected = await operations(served)

    response = await offline.page.goto(f"{served}/docs")
    assert response is not None
    assert_the_policy_allows_nothing_from_elsewhere(
        await response.header_value("content-security-policy")
    )
    blocks = offline.page.locator(".opblock-summary")
    await blocks.first.wait_for(timeout=15_000)

    shown = []
    for block in await blocks.all():
        method = (await block.locator(".opblock-summary-method").inner_text()).strip()
        path = (await block.locator(".opblock-summary-path").get_attribute("data-path")) or ""
        shown.append((method, path))
    assert sorted(shown) == sorted(expected)
    assert_nothing_left_this_machine(offline)


async def test_redoc_shows_the_operations_with_nothing_from_another_host(
    served: str, offline: Offline
) -> None:
    response = await offline.page.goto(f"{served}/redoc")
    assert response is not None
    assert_the_policy_allows_nothing_from_elsewhere(
        await response.header_value("content-security-policy")
    )
    # Every service has its health check; ReDoc titles each operation with its summary.
    health = offline.page.locator("h2", has_text="Broker and store reachable")
    await health.wait_for(timeout=15_000)
    # ReDoc's footer always tries its maker's logo from their CDN (it hides the image when that
    # fails): the policy stops it before it becomes a request.
    assert_nothing_left_this_machine(offline, expected_refusals="cdn.redoc.ly/redoc/logo-mini.svg")
