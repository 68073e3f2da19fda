"""The portal's public pages as a reporter and a patient meet them, in milliseconds: the app on
the in-memory store, a recording intake (services/portal sends complaints and ratings there
with its own API key) and a recording Kafka. The same flows run in a real browser against the
real broker and store in tests/integration/test_portal_browser.py."""

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from schemas import topics
from schemas.case import CaseState, derive_case_id
from schemas.follow_up import ReporterAddition, ReporterReply
from schemas.satisfaction import Touchpoint
from services.intake.crypto import new_follow_up_code
from services.portal import qr
from services.portal.touchpoints import Sheet
from services.portal.wrong_codes import code_group
from tests.factories import complaint_event, routed_case
from tests.portal import INTAKE_KEY, QR_KEY, Running, hidden, post_form, running_portal

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
COMPLAINT = {
    "category": "red_envelope",
    "accused_department": "general_psychiatry",
    "description": "主治医生收了红包才安排手术。",
    "anonymous": "yes",
}
PAGE_LIMIT_BYTES = 100 * 1024


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_portal(tmp_path, NOW) as portal:
        yield portal


class Labels(HTMLParser):
    """Each form control and whether a <label for=…> names it."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.radios_in_labels = 0
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "label":
            self._in_label += 1
            if values.get("for"):
                self.labelled.add(str(values["for"]))
        if tag in ("input", "select", "textarea") and values.get("type") != "hidden":
            if values.get("type") == "radio" and self._in_label:
                self.radios_in_labels += 1
            else:
                self.controls.append(str(values.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1


def _case(complaint_id: uuid.UUID, state: CaseState, revision: int) -> object:
    opened = routed_case(complaint_event(), now=NOW)
    return opened.model_copy(
        update={
            "case_id": derive_case_id(complaint_id),
            "source_event_ids": (complaint_id,),
            "revision": revision,
            "state": state,
            "updated_at": NOW + timedelta(hours=revision),
        }
    )


# --- every page ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/follow-up", "rate"])
async def test_every_page_is_small_labelled_and_sent_with_the_security_headers(
    running: Running, path: str
) -> None:
    if path == "rate":
        path = Sheet(Touchpoint.REGISTRATION, "general_psychiatry").path(QR_KEY.encode())
    async with running.browser() as browser:
        page = await browser.get(path)
        stylesheet = await browser.get("/static/portal.css")

    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert len(page.content) + len(stylesheet.content) < PAGE_LIMIT_BYTES
    assert "<script" not in page.text
    assert "http://" not in page.text.replace('xmlns="http://', "")
    labels = Labels()
    labels.feed(page.text)
    assert labels.controls, "every page has a form"
    assert set(labels.controls) <= labels.labelled, "every control is named by a label"


async def test_a_form_sent_without_the_pages_token_is_refused(running: Running) -> None:
    async with running.browser() as browser:
        await browser.get("/")
        forged = await browser.post("/", data=COMPLAINT | {"csrf_token": "guessed"})

    assert forged.status_code == 403
    assert running.intake.sent == []


# --- the complaint form ---------------------------------------------------------------------------


async def test_an_anonymous_complaint_goes_to_intake_and_its_code_is_shown_once(
    running: Running,
) -> None:
    async with running.browser() as browser:
        filed = await post_form(browser, "/", COMPLAINT)

    assert filed.status_code == 200, filed.text
    ((path, body, key),) = running.intake.sent
    assert (path, key) == ("/v1/complaints", INTAKE_KEY)
    assert body["source_system"] == "portal"
    assert body["channel"] == "portal"
    assert body["anonymous"] is True
    assert "complainant_contact" not in body
    assert body["description"] == COMPLAINT["description"]
    code = running.intake.codes[body["source_ref"]]
    assert code in filed.text
    assert "丢失后无法找回" in filed.text


async def test_a_named_complaint_sends_its_contact_to_intake_to_be_sealed(
    running: Running,
) -> None:
    fields = COMPLAINT | {"anonymous": "no", "phone": "13800138000", "name": "李女士"}
    async with running.browser() as browser:
        filed = await post_form(browser, "/", fields)

    assert filed.status_code == 200, filed.text
    ((_, body, _),) = running.intake.sent
    assert body["anonymous"] is False
    assert body["complainant_contact"] == {"name": "李女士", "phone": "13800138000"}


async def test_a_form_sent_twice_is_one_complaint_with_one_code(running: Running) -> None:
    async with running.browser() as browser:
        opened = await browser.get("/")
        tokens = {
            "csrf_token": hidden(opened.text),
            "form_token": hidden(opened.text, "form_token"),
        }
        first = await browser.post("/", data=tokens | COMPLAINT)
        again = await browser.post("/", data=tokens | COMPLAINT)

    refs = {body["source_ref"] for _, body, _ in running.intake.sent}
    assert len(refs) == 1
    (code,) = running.intake.codes.values()
    assert code in first.text
    assert code in again.text


async def test_a_complaint_refused_names_the_fields_in_chinese_and_keeps_what_was_typed(
    running: Running,
) -> None:
    fields = COMPLAINT | {"category": "", "amount_cny": "五百", "anonymous": "no"}
    async with running.browser() as browser:
        refused = await post_form(browser, "/", fields)

    assert refused.status_code == 422
    assert "联系方式" in refused.text  # named, without any contact
    fields = COMPLAINT | {"category": "", "amount_cny": "五百"}
    async with running.browser() as browser:
        refused = await post_form(browser, "/", fields)
    assert refused.status_code == 422
    assert "反映类别" in refused.text
    assert "涉及金额" in refused.text
    assert COMPLAINT["description"] in refused.text
    assert running.intake.sent == []


async def test_intake_unavailable_says_nothing_was_sent(running: Running) -> None:
    running.intake.down = True
    async with running.browser() as browser:
        answer = await post_form(browser, "/", COMPLAINT)

    assert answer.status_code == 503
    assert "未能提交" in answer.text
    assert "QL-" not in answer.text


# --- the follow-up page ---------------------------------------------------------------------------


async def _code_of(running: Running) -> tuple[str, uuid.UUID]:
    complaint_id, code = uuid.uuid4(), new_follow_up_code()
    await running.learn(code, complaint_id)
    return code, complaint_id


async def test_the_follow_up_page_shows_the_status_in_chinese_the_deadline_and_the_replies(
    running: Running,
) -> None:
    code, complaint_id = await _code_of(running)
    async with running.browser() as browser:
        received = await post_form(browser, "/follow-up", {"code": code})
        case = _case(complaint_id, CaseState.INVESTIGATING, 3)
        await running.portal.follow_ups.follow_cases([case])  # type: ignore[list-item]
        reply = ReporterReply(
            event_id=uuid.uuid4(),
            case_id=derive_case_id(complaint_id),
            text="已转精神科核查，请耐心等待。",
            sent_by="desk",
            sent_at=NOW + timedelta(days=1),
        )
        await running.portal.follow_ups.keep_replies([reply])
        investigating = await post_form(browser, "/follow-up", {"code": code})

    assert received.status_code == 200
    assert "已受理" in received.text
    assert "调查中" in investigating.text
    assert case.deadline.astimezone(UTC).strftime("%Y") in investigating.text  # type: ignore[attr-defined]
    assert 'id="deadline"' in investigating.text
    assert reply.text in investigating.text
    assert "行风办答复" in investigating.text


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (CaseState.OPENED, "已受理"),
        (CaseState.ASSIGNED, "已受理"),
        (CaseState.INVESTIGATING, "调查中"),
        (CaseState.FINDING_RECORDED, "已有调查结论"),
        (CaseState.CLOSED, "已结案"),
    ],
)
async def test_each_state_reads_in_plain_chinese(
    running: Running, state: CaseState, shown: str
) -> None:
    code, complaint_id = await _code_of(running)
    await running.portal.follow_ups.follow_cases([_case(complaint_id, state, 2)])  # type: ignore[list-item]
    async with running.browser() as browser:
        page = await post_form(browser, "/follow-up", {"code": code})

    status = re.search(r'id="status">([^<]*)<', page.text)
    assert status is not None
    assert status.group(1).strip() == shown


async def test_what_the_reporter_adds_is_published_and_shown_in_the_thread(
    running: Running,
) -> None:
    code, complaint_id = await _code_of(running)
    async with running.browser() as browser:
        shown = await post_form(browser, "/follow-up", {"code": code})
        added = await browser.post(
            "/follow-up/add",
            data={"csrf_token": hidden(shown.text), "code": hidden(shown.text, "code")}
            | {"text": "另有一位病友可以作证。"},
        )

    assert added.status_code == 200
    assert "补充内容已提交" in added.text
    assert "另有一位病友可以作证。" in added.text
    assert "我的补充" in added.text
    ((topic, key, message),) = running.kafka.sent
    assert topic == topics.REPORTER_ADDITIONS
    assert key == complaint_id.bytes
    assert isinstance(message, ReporterAddition)
    assert message.text == "另有一位病友可以作证。"


async def test_nothing_is_shown_added_when_kafka_is_down(running: Running) -> None:
    code, _ = await _code_of(running)
    running.kafka.down = True
    async with running.browser() as browser:
        shown = await post_form(browser, "/follow-up", {"code": code})
        added = await browser.post(
            "/follow-up/add",
            data={"csrf_token": hidden(shown.text), "code": code, "text": "补充。"},
        )

    assert added.status_code == 503
    assert "我的补充" not in added.text


async def test_a_wrong_code_and_an_unknown_one_get_the_same_answer(running: Running) -> None:
    known, _ = await _code_of(running)
    async with running.browser() as browser:
        wrong = await post_form(browser, "/follow-up", {"code": known[:-1] + "x"})
        unknown = await post_form(browser, "/follow-up", {"code": new_follow_up_code()})

    assert wrong.status_code == unknown.status_code == 404
    assert wrong.text == unknown.text


def _guesses_in_the_group_of(code: str, count: int) -> list[str]:
    guesses: list[str] = []
    while len(guesses) < count:
        guess = new_follow_up_code()
        if code_group(guess) == code_group(code):
            guesses.append(guess)
    return guesses


async def test_too_many_wrong_codes_lock_the_address_out_of_that_group_even_for_a_right_code(
    tmp_path: Path,
) -> None:
    async with running_portal(tmp_path, NOW, follow_up_failures_allowed=3) as running:
        code, _ = await _code_of(running)
        async with running.browser() as guesser, running.browser("198.51.100.9") as reporter:
            answers = [
                (await post_form(guesser, "/follow-up", {"code": guess})).status_code
                for guess in _guesses_in_the_group_of(code, 4)
            ]
            locked_out = await post_form(guesser, "/follow-up", {"code": code})
            elsewhere = await post_form(reporter, "/follow-up", {"code": code})

    assert answers == [404, 404, 404, 429]
    assert locked_out.status_code == 429
    assert "错误次数过多" in locked_out.text
    assert elsewhere.status_code == 200


async def test_the_code_never_travels_in_a_url(running: Running) -> None:
    async with running.browser() as browser:
        form = await browser.get("/follow-up")

    assert re.search(r'<form method="post" action="/follow-up">', form.text)
    assert 'type="password"' in form.text  # not kept in the browser's form history


# --- 扫码评价 ----------------------------------------------------------------------------------


async def test_a_rating_from_a_qr_link_is_sent_as_a_satisfaction_event(running: Running) -> None:
    path = Sheet(Touchpoint.SETTLEMENT, "finance").path(QR_KEY.encode())
    async with running.browser() as browser:
        page = await browser.get(path)
        rated = await post_form(browser, path, {"score": "2", "comment": "收费窗口索要加号费"})

    assert "财务部" in page.text
    assert "结算" in page.text
    assert rated.status_code == 200, rated.text
    ((sent_to, body, key),) = running.intake.sent
    assert (sent_to, key) == ("/v1/satisfaction-ratings", INTAKE_KEY)
    assert (body["touchpoint"], body["department"], body["score"]) == ("settlement", "finance", 2)
    assert body["comment"] == "收费窗口索要加号费"
    assert body["source_system"] == "portal"


@pytest.mark.parametrize(
    "link",
    [
        "/rate/settlement/cardiology/{signature}",  # another department, same signature
        "/rate/registration/finance/{signature}",  # another touchpoint
        "/rate/parking/finance/{signature}",  # an invented touchpoint
        "/rate/settlement/finance/AAAAAAAAAAAAAAAAAAAAAA",  # a forged signature
    ],
)
async def test_a_forged_qr_link_is_refused(running: Running, link: str) -> None:
    signature = Sheet(Touchpoint.SETTLEMENT, "finance").path(QR_KEY.encode()).rsplit("/", 1)[1]
    path = link.format(signature=signature)
    async with running.browser() as browser:
        opened = await browser.get(path)
        posted = await browser.post(
            path, data={"csrf_token": "x", "form_token": "y" * 20, "score": "1"}
        )

    assert opened.status_code == posted.status_code == 404
    assert "二维码无效" in opened.text
    assert running.intake.sent == []


async def test_one_device_rates_a_sheet_once_in_the_window(running: Running) -> None:
    path = Sheet(Touchpoint.DISCHARGE, "general_psychiatry").path(QR_KEY.encode())
    async with running.browser() as phone, running.browser() as other_phone:
        first = await post_form(phone, path, {"score": "5"})
        again = await post_form(phone, path, {"score": "1"})
        other = await post_form(other_phone, path, {"score": "4"})
        running.clock.now = NOW + timedelta(hours=7)
        later = await post_form(phone, path, {"score": "3"})

    assert (first.status_code, again.status_code, other.status_code) == (200, 429, 200)
    assert later.status_code == 200
    assert [body["score"] for _, body, _ in running.intake.sent] == [5, 4, 3]


def _read(path: Path) -> bytes:
    return path.read_bytes()


async def test_the_qr_command_prints_sheets_whose_links_open_the_rating_page(
    running: Running,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QINGLIAN_PORTAL_QR_KEY_FILE", str(tmp_path / "qr_key"))
    monkeypatch.setenv("QINGLIAN_PUBLIC_URL", "http://portal.test")
    argv = ["--out", str(tmp_path / "sheets"), "--department", "finance"]

    assert qr.main([*argv, "--touchpoint", "settlement", "--touchpoint", "registration"]) == 0

    printed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [Path(svg).name for svg, _ in printed] == [
        "finance-settlement.svg",
        "finance-registration.svg",
    ]
    svg_path, link = printed[0]
    sheet, png = _read(Path(svg_path)), _read(Path(svg_path).with_suffix(".png"))
    assert "财务部 · 结算".encode() in sheet
    assert b"<svg" in sheet
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    async with running.browser() as browser:
        opened = await browser.get(link.removeprefix("http://portal.test"))
    assert opened.status_code == 200
    assert "财务部" in opened.text
    assert qr.main([*argv, "--department", "no_such_department"]) == 2


async def test_a_thousand_wrong_codes_from_one_address_are_refused_and_counted_in_a_metric(
    running: Running,
) -> None:
    allowed = running.portal.wrong_codes.allowed
    async with running.browser() as guesser:
        answers = [
            (
                await guesser.get(
                    "/v1/follow-up", headers={"X-Follow-Up-Code": new_follow_up_code()}
                )
            ).status_code
            for _ in range(1000)
        ]
        metrics = (await guesser.get("/metrics")).text

    wrong, refused = answers.count(404), answers.count(429)
    assert wrong + refused == 1000
    assert wrong <= 16 * allowed, "at most the allowance of each of the 16 code groups"
    assert f'qinglian_portal_follow_up_codes_total{{outcome="wrong"}} {wrong}.0' in metrics
    assert f'qinglian_portal_follow_up_codes_total{{outcome="refused"}} {refused}.0' in metrics


async def test_an_empty_addition_is_refused_naming_the_field_and_nothing_is_sent(
    running: Running,
) -> None:
    code, _ = await _code_of(running)
    async with running.browser() as browser:
        shown = await post_form(browser, "/follow-up", {"code": code})
        added = await browser.post(
            "/follow-up/add",
            data={"csrf_token": hidden(shown.text), "code": code, "text": "\u3000 \u3000"},
        )

    assert added.status_code == 422
    assert "补充内容" in added.text
    assert running.kafka.sent == []


async def test_the_outcome_the_office_shares_is_shown_apart_from_the_messages(
    running: Running,
) -> None:
    code, complaint_id = await _code_of(running)
    case = _case(complaint_id, CaseState.FINDING_RECORDED, 4)
    await running.portal.follow_ups.follow_cases([case])  # type: ignore[list-item]
    shared = ReporterReply.model_validate(
        {
            "event_id": uuid.uuid4(),
            "case_id": derive_case_id(complaint_id),
            "text": "经调查，反映属实，已对当事人作出处理。",
            "sent_by": "desk",
            "sent_at": NOW + timedelta(days=3),
            "shares_outcome": True,
        }
    )
    await running.portal.follow_ups.keep_replies([shared])
    async with running.browser() as browser:
        page = await post_form(browser, "/follow-up", {"code": code})

    outcome = re.search(r'id="outcome">([^<]*)<', page.text)
    assert outcome is not None
    assert outcome.group(1).strip() == shared.text
    assert "已有调查结论" in page.text
