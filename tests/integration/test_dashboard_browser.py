"""The conduct office's dashboard in a real browser: Debian's Chromium, headless, driven by
Playwright, against the reporting service on the real broker and store.

Reporting runs in-process (``create_app`` with a fixed clock, served by uvicorn in the test's
event loop) and is fed the way production feeds it: cases, complaints and decisions published
to their topics, consumed and counted by its own consumers. Its consumer groups start at the
topics' current end (committed before it starts), so it sees exactly the records this module
publishes and none that other tests left on the shared broker.

Screenshots go to test-artifacts/ (kept out of git) for a person to look at.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
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
from services.common.store import Document
from services.reporting.ingest import REPORT_TOPICS
from services.reporting.main import create_app
from services.reporting.settings import ReportingSettings
from tests.conftest import InfraSettings
from tests.factories import complaint_event, routed_case
from tests.integration.kafka_reading import end_offsets
from tests.services import ROOT, created
from tests.waiting import eventually

pytestmark = pytest.mark.infra

PORT = 8901
BASE = f"http://127.0.0.1:{PORT}"
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
"""The dashboard's clock: 2026-11-25 12:00 hospital time; "this month" is 2026-11."""
MONTH = "2026-11"
HEAD_DEPARTMENT = "finance"
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
HOSPITAL_TREND = dict.fromkeys(TREND_MONTHS, 0) | {"26-09": 1, "26-10": 1, "26-11": 6}
HEAD_TREND = dict.fromkeys(TREND_MONTHS, 0) | {"26-10": 1, "26-11": 2}


# --- The service, fed through the broker -----------------------------------------------------


@dataclass(frozen=True)
class Reporting:
    settings: ReportingSettings
    office_token: str
    head_token: str
    seed: Seed


async def _start_groups_at_the_end(app_broker: KafkaBroker, bootstrap: str) -> None:
    """Commit, for each of reporting's consumer groups, the current end of its topics: it then
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


@pytest.fixture(scope="module")
async def reporting(infra: InfraSettings) -> AsyncIterator[Reporting]:
    run_id = os.urandom(4).hex()
    settings = ReportingSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        mongo_db=f"dashboard_{run_id}",
        kafka_group_prefix=f"dashboard-{run_id}-",
        http_port=PORT,
        gauge_refresh_seconds=1.0,
    )
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": settings.mongo_url,
        "QINGLIAN_MONGO_DB": settings.mongo_db,
    }
    app = create_app(settings, clock=lambda: NOW)
    await ensure_topics(settings, REPORT_TOPICS)
    await _start_groups_at_the_end(app.state.broker, settings.kafka_bootstrap)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or serving.done(), within=60, what="reporting")
        assert not serving.done(), "reporting did not start"
        data = seed()
        await _publish(settings.kafka_bootstrap, data)
        office_token, head_token = await asyncio.gather(
            asyncio.to_thread(
                created, env, "services.reporting.tokens", "--role", "conduct_office"
            ),
            asyncio.to_thread(
                created,
                env,
                "services.reporting.tokens",
                "--role",
                "department_head",
                "--department",
                HEAD_DEPARTMENT,
            ),
        )
        await _wait_until_ingested(office_token)
        yield Reporting(settings, office_token, head_token, data)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=40)
        client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url)
        await client.drop_database(settings.mongo_db)
        await client.close()


async def _wait_until_ingested(token: str) -> None:
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
            return bool(
                november["basic"]["total"] == 6  # H was received in November (受理)
                and november["progress"]["cases_opened"] == 6
                and november["progress"]["measures_taken"] == 2
                and october["progress"]["closed"] == 1
                and september["progress"]["cases_opened"] == 1
            )

        await eventually(everything_counted, within=60, what="the seeded records to be counted")


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


async def _sign_in(page: Page, token: str) -> None:
    await page.goto(f"{BASE}/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


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


async def test_conduct_office_sees_the_whole_hospital(
    reporting: Reporting, browser: Browser
) -> None:
    session = await _session(browser)
    page = session.page
    await _sign_in(page, reporting.office_token)
    await page.wait_for_url(f"{BASE}/dashboard")

    assert MONTH in await page.locator("h1").inner_text()
    assert await _tile(page, "open-cases") == 7  # A B C D E G H
    assert await _tile(page, "overdue-cases") == 3  # A C G
    # H happened in October and was received in November: it counts in November (受理).
    assert await _tile(page, "events-this-month") == 6
    assert await _tile(page, "opened-this-month") == 6

    for chart in ("trend", "categories", "departments"):
        assert await page.locator(f"#{chart} svg").count() == 1, chart
    assert await _bars(page, "trend") == HOSPITAL_TREND
    # The categories of the cases the tiles and the other charts count: H's too.
    assert await _bars(page, "categories") == {"回扣": 2, "红包": 2, "服务态度": 1, "倒卖专家号": 1}
    assert await _bars(page, "departments") == {"财务部": 2, "医务部（行风办）": 4}

    await _kpi_table_matches_the_api(page, reporting.office_token)
    await page.screenshot(path=_screenshot("dashboard.png"), full_page=True)

    # The printable monthly report, through the dashboard's link (the cookie signs it in).
    await page.click("text=月报 Monthly report")
    await page.wait_for_url(f"{BASE}/v1/reports/monthly/print?month={MONTH}")
    progress = await page.locator("#progress").inner_text()
    assert "本月受理案件 Cases opened\t6" in progress
    assert "处理措施 Measures taken\t2" in progress
    overdue = page.locator("#overdue tr")
    assert await overdue.count() == 4  # the heading, then G, A, C by deadline
    rows = [await overdue.nth(index).inner_text() for index in (1, 2, 3)]
    for row, (name, deadline) in zip(
        rows, [("G", "2026-09-30"), ("A", "2026-11-19"), ("C", "2026-11-20")], strict=True
    ):
        assert reporting.seed.cases[name].case_id in row
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
    # Nothing of November's six cases is investigated yet: 投诉查处率 0, short of 100 %.
    rate = page.locator('#kpi tr[data-metric="complaint_investigation_rate"]')
    assert await rate.locator("td.shortfall").count() == 1
    cells = await rate.locator("td").all_inner_texts()
    assert cells[1:3] == ["0.00%", "≥ 100.00%"], "rates read as percentages"


async def test_department_head_sees_only_their_department(
    reporting: Reporting, browser: Browser
) -> None:
    session = await _session(browser)
    page = session.page
    await _sign_in(page, reporting.head_token)
    await page.wait_for_url(f"{BASE}/dashboard")

    assert "财务部" in await page.locator("h1").inner_text()
    assert HEAD_DEPARTMENT not in await page.locator("body").inner_text(), "names, not codes"
    assert await _tile(page, "open-cases") == 2  # A B
    assert await _tile(page, "overdue-cases") == 1  # A
    assert await _tile(page, "opened-this-month") == 2
    assert await _bars(page, "trend") == HEAD_TREND
    assert await _bars(page, "departments") == {"财务部": 2}
    # The categories of the cases shown, A and B.
    assert await _bars(page, "categories") == {"回扣": 2}
    await page.screenshot(path=_screenshot("dashboard-department-head.png"), full_page=True)

    # Another department's report is not theirs to read.
    response = await page.goto(f"{BASE}/v1/reports/monthly/print?month={MONTH}&department=nursing")
    assert response is not None
    assert response.status == 403

    _only_this_machine(session.requested)
    await session.context.close()


async def test_a_wrong_token_stays_on_the_login_page(
    reporting: Reporting, browser: Browser
) -> None:
    del reporting  # only needs the service running
    session = await _session(browser)
    page = session.page
    await _sign_in(page, "qlr_" + "0" * 40)

    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "令牌无效或已撤销" in await alert.inner_text()
    assert urlsplit(page.url).path == "/login"
    assert await page.locator("#token").count() == 1
    assert not [cookie for cookie in await session.context.cookies() if cookie["value"]]
    # The dashboard sends this browser back to sign in.
    response = await page.goto(f"{BASE}/dashboard")
    assert response is not None
    assert response.status == 200
    assert urlsplit(page.url).path == "/login"
    assert await page.locator("#token").count() == 1

    _only_this_machine(session.requested)
    await session.context.close()
