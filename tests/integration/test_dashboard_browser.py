"""The conduct office's dashboard in a real browser: Debian's Chromium, headless, driven by
Playwright, against reporting and the desk on the real broker and store. One sign-in serves
both: people sign in at the desk, and the browser sends the desk's cookie to reporting (same
host, another port), which asks the desk who it is.

Reporting (with a fixed clock) and the desk run in-process, served by uvicorn in the test's
event loop, and are fed the way production feeds them: cases, complaints and decisions
published to their topics, consumed by their own consumers. Their consumer groups start at the
topics' current end (committed before they start), so they see exactly the records this module
publishes and none that other tests left on the shared broker. Accounts are made as operators
make them (``python -m services.desk.users``); the test reads the reports as a machine does,
with a report token, only to know when the records were counted.

Screenshots go to test-artifacts/ (kept out of git) for a person to look at.
"""

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import LogicSubscriber
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from pymongo import AsyncMongoClient

from schemas import topics
from schemas.case import CaseChange, CaseState, CaseUpdated, HistoryEntry
from schemas.catalogue import BY_TYPE
from schemas.complaint import ComplaintReceived
from schemas.decision import Decision, DecisionKind, EscalationTarget, Measure, SubjectKind
from services.common.broker import ensure_topics
from services.common.desk_sessions import DESK_SESSION_COOKIE
from services.common.settings import ServiceSettings
from services.common.store import Document
from services.desk.main import create_app as create_desk
from services.desk.settings import DeskSettings
from services.reporting.main import create_app
from services.reporting.settings import ReportingSettings
from tests.conftest import InfraSettings
from tests.factories import complaint_event, routed_case
from tests.integration.kafka_reading import end_offsets
from tests.services import ROOT, created
from tests.waiting import eventually

pytestmark = pytest.mark.infra

PORT, DESK_PORT = 8901, 8902
BASE, DESK = f"http://127.0.0.1:{PORT}", f"http://127.0.0.1:{DESK_PORT}"
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
"""The dashboard's clock: 2026-11-25 12:00 hospital time; "this month" is 2026-11."""
MONTH = "2026-11"
HEAD_DEPARTMENT = "finance"
FINANCE_HEAD = "S0201"
"""财务部's head (services/common/departments.toml): the desk account "head" is theirs."""
CHOSEN = "a long passphrase of my own"
DESK_ANSWER_KEPT = 1.0
"""How long reporting keeps the desk's answer about a session, here."""
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# No first-run UI, no background traffic to Google's hosts (refused on this network anyway).
# Playwright itself adds a fresh, empty --user-data-dir to every launch.
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


# --- What is published, and what the dashboard must show of it -------------------------------


def _complaint(
    category: str, accused: str, received: datetime, occurred: datetime | None = None
) -> ComplaintReceived:
    return complaint_event(
        received_at=received,
        source_ref=f"DASH-{uuid.uuid4().hex[:8]}",
        category=category,
        accused_department=accused,
        occurred_at=(occurred or received - timedelta(hours=6)).isoformat(),
    )


def _closed(case: CaseUpdated, finding: datetime, closing: datetime) -> CaseUpdated:
    """The case after a finding and a closing (the revision the router publishes last)."""
    source = case.source_event_ids[0]
    entries = (
        HistoryEntry(
            change=CaseChange.FINDING_RECORDED,
            state=CaseState.FINDING_RECORDED,
            at=finding,
            by="S0101",
            source_event_id=source,
        ),
        HistoryEntry(
            change=CaseChange.CLOSED,
            state=CaseState.CLOSED,
            at=closing,
            by="S0101",
            source_event_id=source,
        ),
    )
    return case.model_copy(
        update={
            "revision": case.revision + 2,
            "state": CaseState.CLOSED,
            "history": (*case.history, *entries),
            "updated_at": closing,
        }
    )


def _day(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Seed:
    complaints: list[ComplaintReceived]
    cases: dict[str, CaseUpdated]
    decisions: list[Decision]


def seed() -> Seed:
    """Eight complaints, each opening a case (15-day deadline): kickbacks go to 财务部
    (finance), the rest to 医务部（行风办）. On 2026-11-25:

    - A kickback, 11-04, open, overdue           - B kickback (finance staff), 11-20, open
    - C red envelope, 11-05, open, overdue        - D attitude, 11-22, open
    - E red envelope, 11-24, open                 - F kickback, 10-10, investigated and closed
    - G attitude, 09-15, open, overdue
    - H appointment scalping seen on 10-28 and reported on 11-21, open: a November case of an
      October event
    - J kickback, 11-23, open, against 财务部's own head and handled by 财务部 (routed before
      they became head): the hospital counts it, that head never sees it
    """
    plan = {
        # 02:00 on 11-04 in the hospital: its deadline is 11-19 there, 11-18 in UTC.
        "A": ("kickback", "pharmacy", datetime(2026, 11, 3, 18, 0, tzinfo=UTC)),
        "B": ("kickback", "finance", _day(11, 20)),
        "C": ("red_envelope", "general_psychiatry", _day(11, 5)),
        "D": ("attitude", "general_psychiatry", _day(11, 22)),
        "E": ("red_envelope", "outpatient", _day(11, 24)),
        "F": ("kickback", "pharmacy", _day(10, 10)),
        "G": ("attitude", "outpatient", _day(9, 15)),
    }
    complaints = {name: _complaint(*args) for name, args in plan.items()}
    complaints["H"] = _complaint("appointment_scalping", "outpatient", _day(11, 21), _day(10, 28))
    cases = {name: routed_case(complaint) for name, complaint in complaints.items()}
    cases["F"] = _closed(cases["F"], finding=_day(10, 20), closing=_day(10, 25))
    clerk = _complaint("kickback", "finance", _day(11, 23))
    against_head = {"accused_staff_id": FINANCE_HEAD}
    complaints["J"] = clerk.model_copy(update=against_head)
    cases["J"] = routed_case(clerk).model_copy(update=against_head)
    assert cases["J"].responsible_department.code == HEAD_DEPARTMENT
    decisions = [
        _decision(cases["A"], DecisionKind.MEASURE, at=_day(11, 21), measure=Measure.INTERVIEW),
        _decision(
            cases["C"],
            DecisionKind.ESCALATION,
            at=_day(11, 23),
            escalate_to=EscalationTarget.LEADERSHIP_GROUP,
        ),
    ]
    return Seed(list(complaints.values()), cases, decisions)


def _decision(case: CaseUpdated, kind: DecisionKind, *, at: datetime, **fields: object) -> Decision:
    key = f"R-TEST:{kind}:{case.case_id}"
    return Decision.model_validate(
        {
            "event_id": uuid.uuid5(uuid.NAMESPACE_URL, key),
            "key": key,
            "rule_id": "R-TEST",
            "rules_version": "test",
            "kind": kind,
            "subject_kind": SubjectKind.CASE,
            "subject_id": case.case_id,
            "case_id": case.case_id,
            "as_of": at,
            "decided_at": at,
            "source_event_ids": case.source_event_ids,
            "facts": {"case": case.case_id},
            "explanation_zh": "测试决定",
            "explanation_en": "a test decision",
            **fields,
        }
    )


TREND_MONTHS = ["25-12", *(f"26-{m:02d}" for m in range(1, 12))]
HOSPITAL_TREND = dict.fromkeys(TREND_MONTHS, 0) | {"26-09": 1, "26-10": 1, "26-11": 7}
HEAD_TREND = dict.fromkeys(TREND_MONTHS, 0) | {"26-10": 1, "26-11": 2}


# --- The service, fed through the broker -----------------------------------------------------


@dataclass(frozen=True)
class System:
    office_token: str
    """A conduct office report token: the test reads the reports as a machine, to know when
    the records were counted and what the API says."""
    passwords: dict[str, str]
    """One-time passwords of the desk's accounts "office", "leader" and "head", as the
    command printed them."""
    seed: Seed


async def _start_groups_at_the_end(app_broker: KafkaBroker, bootstrap: str) -> None:
    """Commit, for each of a service's consumer groups, the current end of its topics: it then
    reads only what is published after this."""
    for subscriber in app_broker.subscribers:
        assert isinstance(subscriber, LogicSubscriber)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=subscriber.group_id, enable_auto_commit=False
        )
        await consumer.start()
        try:
            ends = {
                TopicPartition(topic, partition): offset
                for topic in subscriber.topic_names_for_subscribe
                for partition, offset in (await end_offsets(bootstrap, topic)).items()
            }
            consumer.assign(list(ends))
            await consumer.commit(ends)
        finally:
            await consumer.stop()


async def _publish(bootstrap: str, data: Seed) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [
            await producer.send(
                topics.COMPLAINTS,
                complaint.model_dump_json().encode(),
                key=BY_TYPE["complaint"].key(complaint),
            )
            for complaint in data.complaints
        ]
        sent += [
            await producer.send(
                topics.CASES, case.model_dump_json().encode(), key=case.case_id.encode()
            )
            for case in data.cases.values()
        ]
        sent += [
            await producer.send(
                topics.DECISIONS,
                decision.model_dump_json().encode(),
                key=decision.subject_id.encode(),
            )
            for decision in data.decisions
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _settings(infra: InfraSettings, keys: Path) -> tuple[ReportingSettings, DeskSettings]:
    """Reporting and the desk, each with a database and consumer groups of its own, and the
    session reader key both are given."""
    run_id = os.urandom(4).hex()
    key_file = keys / "session_reader_key"
    key_file.write_text(secrets.token_urlsafe(32))
    reporting = ReportingSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        session_reader_key_file=key_file,
        mongo_db=f"dashboard_{run_id}",
        kafka_group_prefix=f"dashboard-{run_id}-",
        http_port=PORT,
        gauge_refresh_seconds=1.0,
        desk_url=DESK,
        desk_public_url=DESK,
        desk_session_cache_seconds=DESK_ANSWER_KEPT,
    )
    desk = DeskSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        session_reader_key_file=key_file,
        mongo_db=f"dashboard_desk_{run_id}",
        kafka_group_prefix=f"dashboard-desk-{run_id}-",
        http_port=DESK_PORT,
        reporting_url=BASE,
    )
    return reporting, desk


def _env(settings: ServiceSettings) -> dict[str, str]:
    """What the operators' commands need to act on this service's store."""
    return {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": settings.mongo_url,
        "QINGLIAN_MONGO_DB": settings.mongo_db,
    }


@asynccontextmanager
async def _served(app: FastAPI, port: int, bootstrap: str) -> AsyncIterator[None]:
    """The app on ``port``, its consumer groups starting at the topics' end."""
    await _start_groups_at_the_end(app.state.broker, bootstrap)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or serving.done(), within=60, what=f":{port}")
        assert not serving.done(), f"the service on {port} did not start"
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=40)


async def _accounts(env: dict[str, str]) -> dict[str, str]:
    made = {
        "office": ["--role", "conduct_office", "--staff-id", "S0102", "--name", "王敏"],
        "leader": ["--role", "leadership", "--staff-id", "S0001", "--name", "张华"],
        "head": [
            "--role",
            "department_head",
            "--department",
            HEAD_DEPARTMENT,
            "--staff-id",
            FINANCE_HEAD,
            "--name",
            "财务部 负责人",
        ],
    }
    printed = await asyncio.gather(
        *(
            asyncio.to_thread(created, env, "services.desk.users", name, *options)
            for name, options in made.items()
        )
    )
    return {name: out.splitlines()[-1] for name, out in zip(made, printed, strict=True)}


@pytest.fixture(scope="module")
async def system(
    infra: InfraSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    reporting_settings, desk_settings = _settings(infra, tmp_path_factory.mktemp("keys"))
    reporting = create_app(reporting_settings, clock=lambda: NOW)
    desk = create_desk(desk_settings)
    await ensure_topics(infra, topics.ALL)
    try:
        async with (
            _served(desk, DESK_PORT, infra.kafka_bootstrap),
            _served(reporting, PORT, infra.kafka_bootstrap),
        ):
            data = seed()
            await _publish(infra.kafka_bootstrap, data)
            office_token, passwords = await asyncio.gather(
                asyncio.to_thread(
                    created,
                    _env(reporting_settings),
                    "services.reporting.tokens",
                    "--role",
                    "conduct_office",
                ),
                _accounts(_env(desk_settings)),
            )
            await _wait_until_ingested(office_token)
            yield System(office_token, passwords, data)
    finally:
        client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
        for settings in (reporting_settings, desk_settings):
            await client.drop_database(settings.mongo_db)
        await client.close()


EXPECTED_COUNTS = {
    "2026-11 events received": 7,  # H was received in November (受理), J too
    "2026-11 cases opened": 7,
    "2026-11 measures taken": 2,
    "2026-10 cases closed": 1,
    "2026-09 cases opened": 1,
}


async def _wait_until_ingested(token: str) -> None:
    """Until reporting counted what was published; on a timeout, what it had counted and its
    handler failures, so that a failure says why."""
    seen: dict[str, int] = {}
    async with httpx.AsyncClient(
        base_url=BASE, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as http:

        async def month(month: str) -> Any:
            response = await http.get("/v1/reports/monthly", params={"month": month})
            response.raise_for_status()
            return response.json()

        async def everything_counted() -> bool:
            november, october, september = await asyncio.gather(
                month(MONTH), month("2026-10"), month("2026-09")
            )
            seen.update(
                {
                    "2026-11 events received": november["basic"]["total"],
                    "2026-11 cases opened": november["progress"]["cases_opened"],
                    "2026-11 measures taken": november["progress"]["measures_taken"],
                    "2026-10 cases closed": october["progress"]["closed"],
                    "2026-09 cases opened": september["progress"]["cases_opened"],
                }
            )
            return seen == EXPECTED_COUNTS

        try:
            await eventually(everything_counted, within=60, what="the seeded records counted")
        except AssertionError as timed_out:
            metrics = (await http.get("/metrics")).text.splitlines()
            failures = [line for line in metrics if "failures" in line or "poison" in line]
            raise AssertionError(
                f"{timed_out}: counted {seen}, expected {EXPECTED_COUNTS}; "
                f"reporting's handler failures: {[f for f in failures if not f.startswith('#')]}"
            ) from None


# --- The browser ------------------------------------------------------------------------------


@dataclass
class Session:
    browser: Browser
    context: BrowserContext
    page: Page
    requested: list[str]


@pytest.fixture
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


async def _session(browser: Browser) -> Session:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = await context.new_page()
    return Session(browser, context, page, requested)


def _only_this_machine(requested: list[str]) -> None:
    assert requested, "no request was recorded"
    elsewhere = [url for url in requested if urlsplit(url).hostname != "127.0.0.1"]
    assert not elsewhere, f"the pages asked other hosts: {elsewhere}"


async def _sign_in(page: Page, username: str, password: str) -> None:
    """Fill and send the desk's sign-in form (the page is on it)."""
    assert urlsplit(page.url).netloc == urlsplit(DESK).netloc, page.url
    assert urlsplit(page.url).path == "/login", page.url
    await page.get_by_label("用户名 Username").fill(username)
    await page.get_by_label("密码 Password").fill(password)
    await page.get_by_role("button", name="登录 Sign in").click()


async def _first_sign_in_at_the_desk(page: Page, username: str, one_time: str) -> None:
    """Sign in at the desk with the one-time password and choose one's own: the case list."""
    await page.goto(f"{DESK}/login")
    await _sign_in(page, username, one_time)
    await page.wait_for_url(f"{DESK}/password")
    await page.get_by_label("新密码 New password").fill(CHOSEN)
    await page.get_by_label("再次输入 Repeat it").fill(CHOSEN)
    await page.get_by_role("button", name="保存 Save").click()
    await page.wait_for_url(f"{DESK}/cases")


async def _to_the_dashboard(page: Page) -> None:
    """From the desk to the reports, by the desk's menu."""
    await page.get_by_role("link", name="报表 Reports").click()
    await page.wait_for_url(f"{BASE}/dashboard")


async def _bars(page: Page, chart: str) -> dict[str, int]:
    groups = page.locator(f"#{chart} svg g.bar-group")
    found: dict[str, int] = {}
    for index in range(await groups.count()):
        group = groups.nth(index)
        label = await group.get_attribute("data-label")
        value = await group.get_attribute("data-value")
        assert label is not None
        assert value is not None
        found[label] = int(value)
    return found


async def _tile(page: Page, tile: str) -> int:
    return int(await page.locator(f"#{tile} b").inner_text())


def _screenshot(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


async def test_conduct_office_signed_in_at_the_desk_sees_the_whole_hospital(
    system: System, browser: Browser
) -> None:
    session = await _session(browser)
    page = session.page
    await _first_sign_in_at_the_desk(page, "office", system.passwords["office"])
    await _to_the_dashboard(page)

    assert MONTH in await page.locator("h1").inner_text()
    assert "王敏（行风办 conduct_office）" in await page.locator("#who").inner_text()
    assert await _tile(page, "open-cases") == 8  # A B C D E G H J
    assert await _tile(page, "overdue-cases") == 3  # A C G
    # H happened in October and was received in November: it counts in November (受理).
    assert await _tile(page, "events-this-month") == 7
    assert await _tile(page, "opened-this-month") == 7

    for chart in ("trend", "categories", "departments"):
        assert await page.locator(f"#{chart} svg").count() == 1, chart
    assert await _bars(page, "trend") == HOSPITAL_TREND
    # The categories of the cases the tiles and the other charts count: H's too.
    assert await _bars(page, "categories") == {"回扣": 3, "红包": 2, "服务态度": 1, "倒卖专家号": 1}
    assert await _bars(page, "departments") == {"财务部": 3, "医务部（行风办）": 4}

    await _kpi_table_matches_the_api(page, system.office_token)
    await page.screenshot(path=_screenshot("dashboard.png"), full_page=True)

    # The printable monthly report, through the dashboard's link (the desk's cookie signs it
    # in).
    await page.click("text=月报 Monthly report")
    await page.wait_for_url(f"{BASE}/v1/reports/monthly/print?month={MONTH}")
    progress = await page.locator("#progress").inner_text()
    assert "本月受理案件 Cases opened\t7" in progress
    assert "处理措施 Measures taken\t2" in progress
    overdue = page.locator("#overdue tr")
    assert await overdue.count() == 4  # the heading, then G, A, C by deadline
    rows = [await overdue.nth(index).inner_text() for index in (1, 2, 3)]
    for row, (name, deadline) in zip(
        rows, [("G", "2026-09-30"), ("A", "2026-11-19"), ("C", "2026-11-20")], strict=True
    ):
        assert system.seed.cases[name].case_id in row
        assert deadline in row, "deadlines are the hospital's calendar days"
    assert "月度工作开展情况" in await page.locator("h1").inner_text()
    # The hospital's clock (UTC+8), and the 20th as the last day to send the report.
    heading = await page.locator("p").first.inner_text()
    assert "截至 As of 2026-11-25 12:00" in heading
    assert "报送截止 Due 2026-12-20（" in heading
    await page.screenshot(path=_screenshot("monthly-report.png"), full_page=True)

    _only_this_machine(session.requested)
    await session.context.close()


async def _kpi_table_matches_the_api(page: Page, token: str) -> None:
    async with httpx.AsyncClient(base_url=BASE, timeout=10) as http:
        response = await http.get(
            "/v1/reports/kpi",
            params={"period": MONTH},
            headers={"Authorization": f"Bearer {token}"},
        )
    response.raise_for_status()
    statuses = response.json()
    assert statuses
    rows = page.locator("#kpi tr[data-metric]")
    assert await rows.count() == len(statuses)
    for status in statuses:
        row = page.locator(f'#kpi tr[data-metric="{status["metric"]}"]')
        text = await row.inner_text()
        assert status["label_zh"] in text
        assert status["status_zh"] in text
    # Nothing of November's seven cases is investigated yet: 投诉查处率 0, short of 100 %.
    rate = page.locator('#kpi tr[data-metric="complaint_investigation_rate"]')
    assert await rate.locator("td.shortfall").count() == 1
    cells = await rate.locator("td").all_inner_texts()
    assert cells[1:3] == ["0.00%", "≥ 100.00%"], "rates read as percentages"


async def test_a_department_head_signed_in_at_the_desk_sees_only_their_department(
    system: System, browser: Browser
) -> None:
    session = await _session(browser)
    page = session.page
    await _first_sign_in_at_the_desk(page, "head", system.passwords["head"])
    await _to_the_dashboard(page)

    assert "财务部" in await page.locator("h1").inner_text()
    assert HEAD_DEPARTMENT not in await page.locator("body").inner_text(), "names, not codes"
    # J, against this head and handled by their department, is in no figure: A and B only.
    assert await _tile(page, "open-cases") == 2  # A B
    assert await _tile(page, "overdue-cases") == 1  # A
    assert await _tile(page, "opened-this-month") == 2
    assert await _bars(page, "trend") == HEAD_TREND
    assert await _bars(page, "departments") == {"财务部": 2}
    # The categories of the cases shown, A and B.
    assert await _bars(page, "categories") == {"回扣": 2}
    assert system.seed.cases["J"].case_id not in await page.content()
    await page.screenshot(path=_screenshot("dashboard-department-head.png"), full_page=True)

    # Another department's report is not theirs to read.
    response = await page.goto(f"{BASE}/v1/reports/monthly/print?month={MONTH}&department=nursing")
    assert response is not None
    assert response.status == 403

    # The open-cases tile opens the desk's list of them, where J is not either.
    await page.goto(f"{BASE}/dashboard")
    await page.click("#open-cases a")
    await page.wait_for_url(f"{DESK}/cases?state=open")
    await _listed_at_the_desk(page, system.seed.cases["A"].case_id)
    assert await page.locator(f'tr[data-case="{system.seed.cases["B"].case_id}"]').count() == 1
    assert system.seed.cases["J"].case_id not in await page.content()
    await page.screenshot(path=_screenshot("dashboard-to-desk-open-cases.png"), full_page=True)

    _only_this_machine(session.requested)
    await session.context.close()


async def _listed_at_the_desk(page: Page, case_id: str) -> None:
    """Reload the desk's list until the case is on it (the desk reads the topics too)."""

    async def listed() -> bool:
        if await page.locator(f'tr[data-case="{case_id}"]').count() == 1:
            return True
        await page.reload()
        return False

    await eventually(listed, within=60, what=f"{case_id} in the desk's list")


async def test_a_browser_not_signed_in_is_sent_to_the_desk_and_back_to_the_dashboard(
    system: System, browser: Browser
) -> None:
    session = await _session(browser)
    page = session.page
    # Not signed in: the dashboard sends the browser to the desk's sign-in page.
    await page.goto(f"{BASE}/dashboard")
    assert urlsplit(page.url).netloc == urlsplit(DESK).netloc
    assert urlsplit(page.url).path == "/login"
    await page.screenshot(path=_screenshot("dashboard-sign-in-at-the-desk.png"))
    # A wrong password stays there, and signs nothing in.
    await _sign_in(page, "leader", "not the password")
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "用户名或密码错误" in await alert.inner_text()
    assert urlsplit(page.url).path == "/login"
    await page.goto(f"{BASE}/dashboard")
    assert urlsplit(page.url).path == "/login"
    # Signed in (the first time: choosing a password of one's own on the way), the browser is
    # back on the dashboard it asked for; leadership reads the whole hospital.
    await _sign_in(page, "leader", system.passwords["leader"])
    await page.wait_for_url(f"{DESK}/password?*")
    await page.get_by_label("新密码 New password").fill(CHOSEN)
    await page.get_by_label("再次输入 Repeat it").fill(CHOSEN)
    await page.get_by_role("button", name="保存 Save").click()
    await page.wait_for_url(f"{BASE}/dashboard")
    assert "张华（院领导 leadership）" in await page.locator("#who").inner_text()
    assert await _tile(page, "open-cases") == 8
    cookies = await session.context.cookies()
    assert [c["name"] for c in cookies] == [DESK_SESSION_COOKIE], "the reports set none"
    assert cookies[0]["httpOnly"]
    assert cookies[0]["sameSite"] == "Strict"

    # Signing out on the dashboard signs out of both: the desk's sign-in page, and the
    # dashboard sends the browser there again.
    await page.get_by_role("button", name="退出 Sign out").click()
    await page.wait_for_url(f"{DESK}/login")
    await asyncio.sleep(DESK_ANSWER_KEPT)
    await page.goto(f"{BASE}/dashboard")
    assert urlsplit(page.url).netloc == urlsplit(DESK).netloc
    assert urlsplit(page.url).path == "/login"

    _only_this_machine(session.requested)
    await session.context.close()
