"""The conduct office works a complaint in a browser, from arrival to closing, without a
terminal: Debian's Chromium, headless, driven by Playwright, against intake, router,
escalation and the desk running as real processes on the real broker and store.

Accounts are made as operators make them (``python -m services.desk.users``), complaints
arrive through intake from a portal, and every action a person takes on the desk travels
through intake and the router back to the page. Screenshots go to test-artifacts/.
"""

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from pymongo import AsyncMongoClient

from schemas.base import derive_event_id
from schemas.case import derive_case_id
from services.common.store import Document
from services.desk.web import COOKIE
from tests.conftest import InfraSettings
from tests.services import ROOT, created, running_services
from tests.waiting import eventually

pytestmark = pytest.mark.infra

PORTS = {"intake": 8911, "router": 8912, "escalation": 8913, "desk": 8914}
DESK = f"http://127.0.0.1:{PORTS['desk']}"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHOSEN = "a long passphrase of my own"
RARE_TEXT = "患者家属反映：医生收受回扣 𠀀𠀁 㐀 🧧💊👨‍⚕️\n金额约五万元。"
"""CJK Extension B and A, emoji (one with a joiner) and a newline: back exactly as sent."""


@dataclass(frozen=True)
class System:
    env: dict[str, str]
    passwords: dict[str, str]
    """One-time passwords of the desk's accounts, as `users create` printed them."""
    cases: dict[str, str]
    """What each test complaint became: name → case id."""


def _complaint(ref: str, **fields: object) -> dict[str, object]:
    return {
        "source_system": "portal",
        "source_ref": ref,
        "occurred_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        "channel": "portal",
        "category": "kickback",
        "description": "反映收受回扣",
        **fields,
    }


def _accounts(env: dict[str, str]) -> dict[str, str]:
    made = {
        "office": ["--role", "conduct_office", "--staff-id", "S0102", "--name", "王敏"],
        "head": ["--role", "department_head", "--department", "finance", "--staff-id", "S0201"],
        "locked": ["--role", "leadership", "--staff-id", "S0001"],
    }
    return {
        name: created(env, "services.desk.users", name, *options).splitlines()[-1]
        for name, options in made.items()
    }


@pytest.fixture(scope="module")
def system(infra: InfraSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_id = os.urandom(4).hex()
    logs = tmp_path_factory.mktemp("desk-logs")
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": f"desk_{run_id}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"desk-{run_id}-",
        "QINGLIAN_INTAKE_URL": f"http://127.0.0.1:{PORTS['intake']}",
    }
    key_file = logs / "desk_intake_api_key"
    scopes = "case_action,investigation_finding,follow_up_reply,attachment_read"
    key_file.write_text(
        created(env, "services.intake.keys", "--source", "desk", "--scopes", scopes)
    )
    env["QINGLIAN_INTAKE_API_KEY_FILE"] = str(key_file)
    portal = created(env, "services.intake.keys", "--source", "portal", "--scopes", "complaint")
    passwords = _accounts(env)
    complaints = {
        # Kickbacks and procurement go to finance (财务部), whose head is S0201. The router
        # reads the shared complaints topic from its start and joins a complaint to an open case
        # against the same person in the same category: each complaint here names a person and
        # category no other test's complaint does, so each opens a case of its own.
        "worked": _complaint(
            f"DESK-A-{run_id}", accused_staff_id=f"S9A{run_id}", description=RARE_TEXT
        ),
        "against_head": _complaint(
            f"DESK-B-{run_id}", accused_staff_id="S0201", category="procurement"
        ),
        "clerk": _complaint(f"DESK-C-{run_id}", accused_staff_id=f"S9C{run_id}"),
    }
    with running_services(PORTS, env, logs) as urls:
        for complaint in complaints.values():
            answer = httpx.post(
                f"{urls['intake']}/v1/complaints",
                json=complaint,
                headers={"X-API-Key": portal},
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
        cases = {
            name: derive_case_id(derive_event_id("portal", str(complaint["source_ref"])))
            for name, complaint in complaints.items()
        }
        yield System(env, passwords, cases)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
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


@dataclass
class Person:
    context: BrowserContext
    page: Page
    requested: list[str]

    async def close(self) -> None:
        elsewhere = [url for url in self.requested if urlsplit(url).hostname != "127.0.0.1"]
        assert self.requested
        assert not elsewhere, f"the pages asked other hosts: {elsewhere}"
        await self.context.close()


async def _person(browser: Browser) -> Person:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    return Person(context, await context.new_page(), requested)


async def _sign_in(page: Page, username: str, password: str) -> None:
    await page.goto(f"{DESK}/login")
    await page.get_by_label("用户名 Username").fill(username)
    await page.get_by_label("密码 Password").fill(password)
    await page.get_by_role("button", name="登录 Sign in").click()


async def _first_sign_in(page: Page, username: str, one_time: str) -> None:
    await _sign_in(page, username, one_time)
    await page.wait_for_url(f"{DESK}/password")
    await page.get_by_label("新密码 New password").fill(CHOSEN)
    await page.get_by_label("再次输入 Repeat it").fill(CHOSEN)
    await page.get_by_role("button", name="保存 Save").click()
    await page.wait_for_url(f"{DESK}/cases")


def _shot(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


async def _until_shown(page: Page, text: str, *, within: float = 60) -> None:
    """Reload the case page until ``text`` is on it (the page also refreshes itself while an
    action is pending)."""

    async def shown() -> bool:
        if text in await page.locator("main").inner_text():
            return True
        await page.reload()
        return False

    await eventually(shown, within=within, what=f"{text!r} on the page")


async def _case_listed(page: Page, case_id: str) -> None:
    # Searched by its id: the shared topics hold every earlier test's cases too, and the whole
    # list may show this one on a later page.
    async def listed() -> bool:
        await page.goto(f"{DESK}/cases?search={case_id}")
        return await page.locator(f'tr[data-case="{case_id}"]').count() == 1

    # A new desk reads the cases topic from its start: every earlier test's cases come first
    # (about 120 a second on this machine).
    await eventually(listed, within=240, what=f"{case_id} in the list")


async def test_the_conduct_office_works_a_complaint_from_arrival_to_closing(
    system: System, browser: Browser
) -> None:
    person = await _person(browser)
    page = person.page
    await page.goto(f"{DESK}/")
    assert urlsplit(page.url).path == "/login"
    await page.screenshot(path=_shot("desk-login.png"))
    await _first_sign_in(page, "office", system.passwords["office"])
    case_id = system.cases["worked"]
    # Cases arrive in the list in the order the desk reads them, not the order they were sent.
    await _case_listed(page, system.cases["against_head"])
    await _case_listed(page, case_id)
    await page.screenshot(path=_shot("desk-cases.png"), full_page=True)

    await page.click(f'a[href="/cases/{case_id}"]')
    await page.wait_for_url(f"{DESK}/cases/{case_id}")
    description = await page.locator("#complaint-1 .description").text_content()
    assert description == RARE_TEXT
    assert "财务部" in await page.locator("#responsible").inner_text()

    await page.click("#form-start_investigation button")
    await _until_shown(page, "开始调查：已生效 applied")
    # Investigating, with no finding yet: the page offers neither step the router would refuse.
    assert await page.locator("#form-start_investigation").count() == 0
    assert await page.locator("#form-close").count() == 0

    finding = page.locator("#form-finding")
    await finding.get_by_label("查实 Yes").check()
    await finding.get_by_label("回扣 kickback").check()
    await finding.get_by_label("查实金额（元） Amount (CNY)").fill("50000")
    await finding.get_by_label("调查结论摘要 Summary").fill("经查，收受医药代表回扣五万元属实。")
    await finding.get_by_role("button", name="记录结论 Record").click()
    await _until_shown(page, "记录调查结论：已生效 applied")
    await _until_shown(page, "移送司法机关", within=90)  # escalation's R-KICKBACK decision
    assert await page.locator('#decisions tr[data-rule="R-KICKBACK"]').count() >= 1
    await page.screenshot(path=_shot("desk-case-decision.png"), full_page=True)

    reply = page.locator("#form-reply")
    await reply.get_by_label("答复内容", exact=False).fill(
        "您反映的问题已查实并依规处理，感谢监督。"
    )
    await reply.get_by_role("button", name="发送 Send").click()
    await _until_shown(page, "答复举报人：已生效 applied")
    assert "您反映的问题已查实并依规处理" in await page.locator(".description.reply").inner_text()
    assert "王敏（S0102）" in await page.locator("#history tr.reporter_replied").inner_text()

    await page.locator("#form-close").get_by_label("结案说明 Note").fill("已移送司法机关")
    await page.locator("#form-close button").click()
    await _until_shown(page, "已结案 closed")
    await page.screenshot(path=_shot("desk-case-closed.png"), full_page=True)

    await page.get_by_role("button", name="退出 Sign out").click()
    await page.wait_for_url(f"{DESK}/login")
    await page.goto(f"{DESK}/cases/{case_id}")
    assert urlsplit(page.url).path == "/login"
    await person.close()


async def test_a_department_head_cannot_reach_a_case_against_themselves(
    system: System, browser: Browser
) -> None:
    person = await _person(browser)
    page = person.page
    await _first_sign_in(page, "head", system.passwords["head"])
    against_head, clerk = system.cases["against_head"], system.cases["clerk"]
    await _case_listed(page, clerk)
    await page.goto(f"{DESK}/cases?category=procurement")
    assert against_head not in await page.locator("main").inner_text()

    by_url = await page.goto(f"{DESK}/cases/{against_head}")
    assert by_url is not None
    assert by_url.status == 404
    await page.screenshot(path=_shot("desk-head-hidden-case.png"))
    for search in (against_head, "S0201"):
        await page.goto(f"{DESK}/cases?search={search}")
        assert await page.locator("tr[data-case]").count() == 0
    export = await person.context.request.get(f"{DESK}/cases?format=csv")
    assert export.status == 200
    exported = await export.text()
    assert clerk in exported
    assert against_head not in exported
    acting = await person.context.request.post(
        f"{DESK}/cases/{against_head}/finding", form={"summary": "x"}
    )
    assert acting.status in (403, 404)
    await person.close()


async def test_wrong_passwords_lock_out_and_forged_expired_or_csrf_less_requests_are_refused(
    system: System, browser: Browser
) -> None:
    person = await _person(browser)
    page = person.page
    for _ in range(5):
        await _sign_in(page, "locked", "not my password")
        assert "用户名或密码错误" in await page.get_by_role("alert").inner_text()
    await _sign_in(page, "locked", system.passwords["locked"])
    assert "登录失败次数过多" in await page.get_by_role("alert").inner_text()
    assert urlsplit(page.url).path == "/login"

    await person.context.add_cookies([{"name": COOKIE, "value": uuid.uuid4().hex * 2, "url": DESK}])
    await page.goto(f"{DESK}/cases")
    assert urlsplit(page.url).path == "/login", "a forged session is no session"

    office = await _person(browser)
    await _sign_in(office.page, "office", CHOSEN)
    await office.page.wait_for_url(f"{DESK}/cases")
    case_id = system.cases["clerk"]
    without_csrf = await office.context.request.post(
        f"{DESK}/cases/{case_id}/start_investigation", form={"form_token": "t" * 24}
    )
    assert without_csrf.status == 403
    assert "表单校验失败" in await without_csrf.text()
    await _expire_sessions(system)
    await office.page.goto(f"{DESK}/cases")
    assert urlsplit(office.page.url).path == "/login", "an expired session is refused"
    await office.close()
    await person.close()


async def _expire_sessions(system: System) -> None:
    """Every session of the desk last used two hours ago (the idle limit is 30 minutes)."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(system.env["QINGLIAN_MONGO_URL"])
    try:
        sessions = client[system.env["QINGLIAN_MONGO_DB"]]["desk_sessions"]
        long_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        for session in await sessions.find({}).to_list():
            session["value"]["last_seen_at"] = long_ago
            await sessions.replace_one({"_id": session["_id"]}, session)
    finally:
        await client.close()
