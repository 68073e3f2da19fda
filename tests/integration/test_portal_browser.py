"""The portal in a real browser on a phone's screen (Debian's Chromium, headless, 390×844),
as a patient with only a phone uses it: file an anonymous complaint with a photo, keep the
code, read the status and the office's reply, add information, rate a touchpoint from its QR
link. Then what
the run left behind: the code and the contact appear in no log line (uvicorn's access log
included), no Kafka record and no file of the broker or the store in plaintext.

Intake and the portal run as real processes (``python -m services.<name>``, logging at DEBUG)
on the real broker and store; the portal sends complaints and ratings to intake with its own
API key, made with intake's keys command. The case is published as the router publishes it,
and the office's reply goes through intake's reply API.

Screenshots go to test-artifacts/ (kept out of git) for a person to look at.
"""

import hashlib
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, ViewportSize, async_playwright
from pymongo import AsyncMongoClient, MongoClient

from schemas import topics
from schemas.case import CaseState
from services.common.broker import ensure_topics
from services.common.kafka_access import SERVICES
from services.common.store import Document
from services.intake.crypto import new_key
from services.portal.settings import PortalSettings
from tests.conftest import InfraSettings
from tests.factories import complaint_event, routed_case
from tests.integration.in_process import start_from_now
from tests.integration.intake_app import TEST_SENDERS_FILE
from tests.integration.kafka_reading import Positions, end_offsets, published_since
from tests.logs import echoes_of
from tests.portal import hidden
from tests.services import ROOT, created, launch, stop_gracefully, wait_healthy
from tests.unit.test_attachments import MARKER, pdf, photo
from tests.waiting import eventually

pytestmark = pytest.mark.infra

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
QR_COMMAND = (sys.executable, "-m", "services.portal.qr")
RATING_COMMENT = "挂号窗口有人说可以加钱插队"
"""The comment the patient leaves with the rating: it tells the rating apart on the topic."""
PHONE: ViewportSize = {"width": 390, "height": 844}
WATCHED = (
    topics.COMPLAINTS,
    topics.FOLLOW_UP_CODES,
    topics.REPORTER_ADDITIONS,
    topics.REPORTER_REPLIES,
    topics.SATISFACTION_RATINGS,
    topics.DEAD_LETTERS,
)
DESCRIPTION = "门诊医生暗示要红包才给开住院单。"
REPLY = "您反映的问题已转门诊部核查，我们会在期限内答复。"
ADDED = "补充：当天下午三点，诊室 12 号。"
CONTACT_PHONE = "13912345678"
CONTACT_NAME = "测试联系人"
PDF_MARKER = "PDF-PLAINTEXT-MARKER-7f3a"
"""Inside the PDF the reporter adds: intake keeps it sealed, so no data file holds it."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class System:
    intake_url: str
    portal_url: str
    portal_env: dict[str, str]
    reply_key: str
    portal_db: str
    logs: Path
    since: dict[str, Positions]
    processes: dict[str, subprocess.Popen[bytes]]
    secrets: list[str] = field(default_factory=list)
    """What must never appear in plaintext: codes and contact details the run used."""

    def stop(self) -> None:
        if self.processes:
            stop_gracefully(self.processes, self.logs)
            self.processes.clear()


def _environments(infra: InfraSettings, run_id: str, logs: Path) -> tuple[dict[str, str], ...]:
    common = {
        **{name: value for name, value in os.environ.items() if not name.startswith("QINGLIAN_")},
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"test-{run_id}-",
        "QINGLIAN_LOG_LEVEL": "DEBUG",
    }
    intake = common | {
        "QINGLIAN_MONGO_DB": f"test_intake_{run_id}",
        "QINGLIAN_CONTACT_KEY": new_key(),
        "QINGLIAN_RAW_SENDERS": str(TEST_SENDERS_FILE),
    }
    (logs / "qr_key").write_text(uuid.uuid4().hex * 2)
    portal = common | {
        "QINGLIAN_MONGO_DB": f"test_portal_{run_id}",
        "QINGLIAN_PORTAL_KEY": uuid.uuid4().hex,
        "QINGLIAN_PORTAL_QR_KEY_FILE": str(logs / "qr_key"),
    }
    return intake, portal


@pytest.fixture(scope="module")
async def system(
    infra: InfraSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    run_id, logs = uuid.uuid4().hex[:12], tmp_path_factory.mktemp("portal-browser")
    intake_env, portal_env = _environments(infra, run_id, logs)
    portal_key = created(
        intake_env,
        "services.intake.keys",
        "--source",
        "portal",
        "--scopes",
        "complaint,satisfaction,attachment_write",
    )
    reply_key = created(
        intake_env, "services.intake.keys", "--source", "desk", "--scopes", "follow_up_reply"
    )
    (logs / "intake_key").write_text(portal_key.splitlines()[-1])
    intake_port, portal_port = _free_port(), _free_port()
    intake_url, portal_url = f"http://127.0.0.1:{intake_port}", f"http://127.0.0.1:{portal_port}"
    portal_env |= {
        "QINGLIAN_INTAKE_URL": intake_url,
        "QINGLIAN_INTAKE_API_KEY_FILE": str(logs / "intake_key"),
        "QINGLIAN_PUBLIC_URL": portal_url,
    }
    settings = PortalSettings(
        kafka_bootstrap=infra.kafka_bootstrap, kafka_group_prefix=f"test-{run_id}-"
    )
    await start_from_now(settings, "portal", *SERVICES["portal"].reads)
    await ensure_topics(settings, WATCHED)  # a fresh broker has none before the services
    since = {topic: await end_offsets(infra.kafka_bootstrap, topic) for topic in WATCHED}
    processes = {
        "intake": launch("intake", intake_port, intake_env, logs / "intake.log"),
        "portal": launch("portal", portal_port, portal_env, logs / "portal.log"),
    }
    running = System(
        intake_url,
        portal_url,
        portal_env,
        reply_key.splitlines()[-1],
        portal_env["QINGLIAN_MONGO_DB"],
        logs,
        since,
        processes,
    )
    try:
        for name, url in (("intake", intake_url), ("portal", portal_url)):
            wait_healthy(name, url, processes[name], logs / f"{name}.log")
        yield running
    finally:
        running.stop()
        mongo: MongoClient[Document] = MongoClient(infra.mongo_url)
        for name in (intake_env["QINGLIAN_MONGO_DB"], portal_env["QINGLIAN_MONGO_DB"]):
            mongo.drop_database(name)
        mongo.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _phone(browser: Browser) -> Page:
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    return await context.new_page()


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"portal-{name}.png"), full_page=True)


async def _portal_knows(infra: InfraSettings, system: System, code: str) -> None:
    """Wait until the portal learned the code (asking its store: a wrong code asked over HTTP
    would count against the client)."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url)
    codes = mongo[system.portal_db]["portal_codes"]
    digest = hashlib.sha256(code.encode()).hexdigest()

    async def known() -> bool:
        return await codes.find_one({"_id": digest}) is not None

    try:
        await eventually(known, within=30, what="the portal to learn the code")
    finally:
        await mongo.close()


async def _publish_case(infra: InfraSettings, form_token: str) -> str:
    """The case the router opens from the complaint, then its investigation started."""
    complaint = complaint_event(
        source_ref=f"portal-{form_token}", category="red_envelope", accused_department="outpatient"
    )
    opened = routed_case(complaint)
    case = opened.model_copy(
        update={"revision": opened.revision + 1, "state": CaseState.INVESTIGATING}
    )
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.CASES, case.model_dump_json().encode(), key=case.case_id.encode()
        )
    finally:
        await producer.stop()
    return case.case_id


async def _follow_up(page: Page, system: System, code: str) -> None:
    await page.goto(f"{system.portal_url}/follow-up")
    await page.get_by_label("查询码").fill(code)
    await page.get_by_role("button", name="查询").click()
    await page.wait_for_selector("#status")


async def test_a_patient_files_follows_and_rates_with_only_a_phone(
    system: System, browser: Browser, infra: InfraSettings
) -> None:
    page = await _phone(browser)
    await page.goto(system.portal_url)
    await _shot(page, "1-complaint-form")
    await page.get_by_label("反映类别").select_option("red_envelope")
    await page.get_by_label("涉及科室").select_option("outpatient")
    await page.get_by_label("具体情况").fill(DESCRIPTION)
    (system.logs / "IMG_0412.jpg").write_bytes(photo())  # with EXIF: camera, GPS position
    system.secrets += [MARKER, PDF_MARKER, "IMG_0412"]  # in the photo's EXIF, in the PDF
    await page.get_by_label("附件（可选）").set_input_files(system.logs / "IMG_0412.jpg")
    await _shot(page, "1b-photo-chosen")
    form_token = await page.input_value("input[name=form_token]")
    await page.get_by_role("button", name="提交").click()
    assert "已收到附件 1 个" in await page.locator("#attachments-received").inner_text()
    code = (await page.locator("#follow-up-code").inner_text()).strip()
    system.secrets.append(code)
    assert code.startswith("QL-")
    assert "丢失后无法找回" in await page.content()
    await _shot(page, "2-code-shown-once")

    await _portal_knows(infra, system, code)
    await _follow_up(page, system, code)
    assert (await page.locator("#status").inner_text()).startswith("已受理")
    await _shot(page, "3-received")

    case_id = await _publish_case(infra, form_token)
    async with httpx.AsyncClient(base_url=system.intake_url) as intake:
        replied = await intake.post(
            "/v1/follow-up/replies",
            json={"case_id": case_id, "text": REPLY},
            headers={"X-API-Key": system.reply_key},
        )
    assert replied.status_code == 202, replied.text

    async def shows_the_reply() -> bool:
        await _follow_up(page, system, code)
        return REPLY in await page.content()

    await eventually(shows_the_reply, within=30, what="the reply on the follow-up page")
    assert (await page.locator("#status").inner_text()).startswith("调查中")
    assert await page.locator("#deadline").is_visible()
    await _shot(page, "4-investigating-with-reply")

    await page.get_by_label("补充内容").fill(ADDED)
    (system.logs / "收据.pdf").write_bytes(pdf(PDF_MARKER))
    await page.get_by_label("附件（可选）").set_input_files(system.logs / "收据.pdf")
    await page.get_by_role("button", name="提交补充").click()
    await page.wait_for_selector(".notice")
    assert ADDED in await page.locator("ol.thread").inner_text()
    assert "附件 1 个" in await page.locator("ol.thread").inner_text()
    await _shot(page, "5-information-added")
    additions = await published_since(
        infra.kafka_bootstrap, topics.REPORTER_ADDITIONS, system.since[topics.REPORTER_ADDITIONS]
    )
    assert [record.json()["text"] for record in additions] == [ADDED]

    link = _qr_link(system, "outpatient", "registration")
    await page.goto(link)
    await _shot(page, "6-rating-page")
    await page.get_by_label("2 分").check()
    await page.get_by_label("意见建议").fill(RATING_COMMENT)
    await page.get_by_role("button", name="提交评价").click()
    await page.wait_for_selector("text=感谢您的评价")
    await _shot(page, "7-rated")
    ratings = await published_since(
        infra.kafka_bootstrap,
        topics.SATISFACTION_RATINGS,
        system.since[topics.SATISFACTION_RATINGS],
    )
    assert [
        (r.json()["touchpoint"], r.json()["department"], r.json()["score"])
        for r in ratings
        if r.json().get("comment") == RATING_COMMENT  # others' ratings may be on the topic too
    ] == [("registration", "outpatient", 2)]

    forged = link.replace("/outpatient/", "/finance/")
    answer = await page.goto(forged)
    assert answer is not None
    assert answer.status == 404
    assert "二维码无效" in await page.content()
    await _shot(page, "8-forged-qr-refused")


def _qr_link(system: System, department: str, touchpoint: str) -> str:
    """The link of a sheet the QR command prints, as an operator runs it."""
    printed = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [
            *QR_COMMAND,
            "--out",
            str(system.logs / "sheets"),
            *("--department", department),
            *("--touchpoint", touchpoint),
        ],
        cwd=ROOT,
        env=system.portal_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    svg, link = printed.stdout.strip().split("\t")
    assert Path(svg).exists()
    return link


def _files_under(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


async def test_codes_and_contacts_appear_in_no_log_kafka_record_or_data_file(
    system: System, infra: InfraSettings
) -> None:
    async with httpx.AsyncClient(base_url=system.portal_url, timeout=10) as phone:
        form = await phone.get("/")
        tokens = {"csrf_token": hidden(form.text), "form_token": hidden(form.text, "form_token")}
        fields = {"category": "attitude", "description": "护士态度恶劣。", "anonymous": "no"}
        contact = {"name": CONTACT_NAME, "phone": CONTACT_PHONE}
        filed = await phone.post("/", data=tokens | fields | contact)
        assert filed.status_code == 200, filed.text
        code = re.findall(r'id="follow-up-code">([^<]+)<', filed.text)[0]
        system.secrets += [code, CONTACT_PHONE, CONTACT_NAME]
        await _portal_knows(infra, system, code)
        shown = await phone.post(
            "/follow-up", data={"csrf_token": tokens["csrf_token"], "code": code}
        )
        assert shown.status_code == 200
    assert len(system.secrets) == 7, "the browser test ran first and kept its secrets"
    system.stop()  # the logs are complete once the processes ended

    portal_log = (system.logs / "portal.log").read_text(errors="replace")
    intake_log = (system.logs / "intake.log").read_text(errors="replace")
    assert "POST /follow-up" in portal_log, "uvicorn's access log is in the log checked"
    records = [
        record
        for topic in WATCHED
        for record in await published_since(infra.kafka_bootstrap, topic, system.since[topic])
    ]
    assert any(record.topic == topics.COMPLAINTS for record in records)
    local = Path(os.environ.get("QINGLIAN_LOCAL_DIR", ROOT / ".local"))
    data_files = [*_files_under(local / "kafka"), *_files_under(local / "postgres")]
    assert data_files, "no data folder found: the check would prove nothing"
    for secret in system.secrets:
        for echo in echoes_of(secret):
            assert echo not in portal_log
            assert echo not in intake_log
            for record in records:
                assert echo.encode() not in record.value
                assert echo.encode() not in (record.key or b"")
        for path in data_files:
            assert secret.encode() not in _read(path), f"{path.name} holds a secret in plaintext"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a file removed meanwhile (a segment rolled, a WAL file recycled)
        return b""
