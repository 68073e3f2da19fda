"""The case desk as its users meet it, in milliseconds: the app on the in-memory store
(``MemoryDocuments``), fed the records the topics carry, and a recording stand-in for intake
that answers as intake does (202 with the event id intake derives from source_ref, 200 for a
repeated source_ref). The same flows run against the real services in
tests/integration/test_desk_browser.py."""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from schemas.case import CaseState, CaseUpdated
from schemas.case_action import CaseActionKind, CaseActionReceived, CaseActionSubmission
from schemas.complaint import ComplaintReceived
from schemas.follow_up import ReporterReply
from services.desk import signin
from services.desk.web import COOKIE
from services.router.domain import note_reply, take_action
from tests.desk import (
    PASSWORD,
    READER_KEY,
    Running,
    client,
    complaint_and_case,
    form_token,
    hidden,
    running_desk,
    sign_in,
    sign_in_anew,
)
from tests.factories import ROUTING

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
RARE_TEXT = "收到红包 𠀀 㐀 🧧👩‍⚕️ 第二行\n\t缩进：「引号」"
"""CJK Extension B and A, emoji with a joiner, a newline and a tab: kept byte for byte."""


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2id parameters: the tests are about the desk, not the hash's cost."""
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_desk(tmp_path, NOW) as desk:
        yield desk


def _case(ref: str, **complaint: Any) -> tuple[ComplaintReceived, CaseUpdated]:
    return complaint_and_case(ref, received_at=RECEIVED, **complaint)


# --- Signing in -------------------------------------------------------------------------------


async def test_a_new_account_signs_in_with_its_one_time_password_then_chooses_its_own(
    running: Running,
) -> None:
    one_time = await running.account("wang", "conduct_office", staff_id="S0102")
    http = client(running.http._transport)

    first = await sign_in(http, "wang", one_time)
    assert first.status_code == 303
    assert first.headers["location"] == "/password"
    # Nothing else until a password of their own is chosen.
    blocked = await http.get("/cases")
    assert blocked.status_code == 303
    assert blocked.headers["location"] == "/password"

    form = await http.get("/password")
    chosen = {"password": PASSWORD, "repeated": PASSWORD, "csrf_token": hidden(form.text)}
    too_short = await http.post(
        "/password", data=chosen | {"password": "short", "repeated": "short"}
    )
    assert too_short.status_code == 422
    assert "密码至少 12 个字符" in too_short.text
    assert (await http.post("/password", data=chosen)).status_code == 303
    assert (await http.get("/cases")).status_code == 200

    again = client(running.http._transport)
    assert (await sign_in(again, "wang", one_time)).status_code == 401, "spent once replaced"
    assert (await sign_in(again, "wang", PASSWORD)).headers["location"] == "/cases"
    listed = await again.get("/cases")
    assert listed.status_code == 200
    assert "案件 Cases" in listed.text


async def test_the_session_cookie_is_a_random_id_httponly_and_strict(running: Running) -> None:
    one_time = await running.account("li", "leadership")
    http = client(running.http._transport)
    answer = await sign_in(http, "li", one_time)

    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 40
    assert one_time not in cookie
    sessions = await running.desk.casework.store.sessions.find()
    assert value not in sessions, "the store keeps only a digest of the session id"


async def test_wrong_passwords_lock_the_account_out_even_for_the_right_password(
    running: Running,
) -> None:
    await running.signed_in("zhao", "conduct_office", staff_id="S0103")
    http = client(running.http._transport)
    for _ in range(5):
        assert (await sign_in(http, "zhao", "wrong password!")).status_code == 401

    locked = await sign_in(http, "zhao", PASSWORD)
    assert locked.status_code == 429
    assert "登录失败次数过多" in locked.text

    running.clock.now += timedelta(minutes=16)  # the window passes
    assert (await sign_in(http, "zhao", PASSWORD)).status_code == 303
    kinds = [r.kind for r in (await running.desk.casework.store.sign_ins.find()).values()]
    assert kinds.count("failed") == 5
    assert "locked_out" in kinds
    assert kinds.count("signed_in") >= 2


async def test_a_forged_or_expired_session_is_sent_to_sign_in(running: Running) -> None:
    http = await running.signed_in("qian", "conduct_office", staff_id="S0104")
    assert (await http.get("/cases")).status_code == 200

    forged = client(running.http._transport)
    forged.cookies.set(COOKIE, "forged-session-id-" + "x" * 30, domain="desk.test")
    answer = await forged.get("/cases")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"

    running.clock.now += timedelta(minutes=31)  # idle longer than allowed
    expired = await http.get("/cases")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/login"


async def test_a_session_ends_after_its_lifetime_however_busy(running: Running) -> None:
    http = await running.signed_in("sun", "leadership")
    for _ in range(26):  # a request every 29 minutes keeps it from going idle
        running.clock.now += timedelta(minutes=29)
        if (await http.get("/cases")).status_code != 200:
            break
    assert running.clock.now - NOW <= timedelta(hours=12, minutes=29)
    assert (await http.get("/cases")).status_code == 303


async def test_a_form_without_its_csrf_token_is_refused(running: Running) -> None:
    complaint, case = _case("CSRF-1")
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("zhou", "conduct_office", staff_id="S0105")
    page = await http.get(f"/cases/{case.case_id}")
    token = form_token(page.text, "start_investigation")

    missing = await http.post(
        f"/cases/{case.case_id}/start_investigation", data={"form_token": token}
    )
    wrong = await http.post(
        f"/cases/{case.case_id}/start_investigation",
        data={"form_token": token, "csrf_token": "not-the-token"},
    )
    login_without = await client(running.http._transport).post(
        "/login", data={"username": "zhou", "password": PASSWORD}
    )
    sign_out_without = await http.post("/logout")

    for answer in (missing, wrong, login_without, sign_out_without):
        assert answer.status_code == 403
        assert "表单校验失败" in answer.text
    assert running.intake.sent == []
    assert (await http.get("/cases")).status_code == 200, "still signed in"


async def test_signing_out_ends_the_session(running: Running) -> None:
    http = await running.signed_in("wu", "leadership")
    page = await http.get("/cases")
    cookie = http.cookies[COOKIE]

    out = await http.post("/logout", data={"csrf_token": hidden(page.text)})
    assert out.status_code == 303
    replayed = client(running.http._transport)
    replayed.cookies.set(COOKIE, cookie, domain="desk.test")
    assert (await replayed.get("/cases")).status_code == 303


# --- The case page ----------------------------------------------------------------------------


async def test_the_case_page_shows_the_complaint_verbatim_and_never_a_contact(
    running: Running,
) -> None:
    complaint, case = _case("TEXT-1", description=RARE_TEXT, category="red_envelope")
    complaint = complaint.model_copy(update={"contact_on_file": True})
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("zheng", "conduct_office", staff_id="S0106")

    page = await http.get(f"/cases/{case.case_id}")
    assert page.status_code == 200
    raw = page.content.decode("utf-8")
    assert RARE_TEXT.encode("utf-8") in page.content  # nothing in it needs escaping
    assert raw.count(RARE_TEXT) == 1
    assert "举报人联系方式已加密保存" in raw
    assert "红包" in raw
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["cache-control"] == "no-store"


async def test_a_refused_action_shows_its_reason_once_the_router_applied_it(
    running: Running,
) -> None:
    complaint, case = _case("REFUSE-1")
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("feng", "conduct_office", staff_id="S0107")
    page = await http.get(f"/cases/{case.case_id}")

    sent = await http.post(
        f"/cases/{case.case_id}/start_investigation",
        data={
            "csrf_token": hidden(page.text),
            "form_token": form_token(page.text, "start_investigation"),
        },
    )
    assert sent.status_code == 303
    ((path, body, key),) = running.intake.sent
    assert path == "/v1/case-actions"
    assert key == "qlk_desk_key"
    assert body["actor_staff_id"] == "S0107"
    assert body["source_system"] == "desk"
    pending = await http.get(f"/cases/{case.case_id}")
    assert "处理中 pending" in pending.text
    assert 'http-equiv="refresh"' in pending.text

    # Another officer started the investigation first: the router refuses this one.
    action = CaseActionReceived.accept(CaseActionSubmission.model_validate(body), received_at=NOW)
    assert action.action is CaseActionKind.START_INVESTIGATION
    started = take_action(
        case, action.model_copy(update={"event_id": uuid.uuid4()}), ROUTING, now=NOW
    )
    assert started.state is CaseState.INVESTIGATING
    await running.publish(cases=[take_action(started, action, ROUTING, now=NOW)])
    shown = await http.get(f"/cases/{case.case_id}")
    assert "被拒绝 refused — 开始调查被拒绝：案件状态为调查中" in shown.text
    assert 'http-equiv="refresh"' not in shown.text


async def test_a_form_sent_twice_is_one_event(running: Running) -> None:
    complaint, case = _case("TWICE-1")
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("chen", "conduct_office", staff_id="S0108")
    page = await http.get(f"/cases/{case.case_id}")
    csrf = hidden(page.text)

    reply = {"csrf_token": csrf, "form_token": form_token(page.text, "reply"), "text": "已收到"}
    start = {"csrf_token": csrf, "form_token": form_token(page.text, "start_investigation")}
    for _ in range(2):
        assert (await http.post(f"/cases/{case.case_id}/reply", data=reply)).status_code == 303
        assert (
            await http.post(f"/cases/{case.case_id}/start_investigation", data=start)
        ).status_code == 303

    paths = [path for path, _, _ in running.intake.sent]
    assert paths.count("/v1/follow-up/replies") == 1
    assert paths.count("/v1/case-actions") == 1


async def test_a_form_intake_could_not_take_can_be_sent_again(running: Running) -> None:
    complaint, case = _case("DOWN-1")
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("chu", "conduct_office", staff_id="S0109")
    page = await http.get(f"/cases/{case.case_id}")
    start = {
        "csrf_token": hidden(page.text),
        "form_token": form_token(page.text, "start_investigation"),
    }
    running.intake.down = True
    await http.post(f"/cases/{case.case_id}/start_investigation", data=start)
    assert "未送达 not sent — 受理服务暂不可用" in (await http.get(f"/cases/{case.case_id}")).text

    running.intake.down = False
    await http.post(f"/cases/{case.case_id}/start_investigation", data=start)
    assert "处理中 pending" in (await http.get(f"/cases/{case.case_id}")).text
    assert len(running.intake.sent) == 1  # the one refused with 503 is not recorded


async def test_a_finding_form_is_refused_naming_the_field(running: Running) -> None:
    complaint, case = _case("FORM-1")
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("wei", "conduct_office", staff_id="S0110")
    page = await http.get(f"/cases/{case.case_id}")

    answer = await http.post(
        f"/cases/{case.case_id}/finding",
        data={
            "csrf_token": hidden(page.text),
            "form_token": form_token(page.text, "finding"),
            "substantiated": "yes",
            "summary": "查实收受回扣",
            "confirmed_amount_cny": "三万",
        },
    )
    assert answer.status_code == 422
    assert "查实类别 Confirmed categories" in answer.text
    assert "查实金额 Amount (CNY)" in answer.text
    assert running.intake.sent == []


# --- Who sees what ----------------------------------------------------------------------------


async def test_a_department_head_never_meets_a_case_against_themselves(
    running: Running,
) -> None:
    # Finance handles kickbacks; S0201 heads it. A complaint against S0201 goes to 纪检监察室
    # (conflict of interest), one against a finance clerk stays with finance.
    against_head, head_case = _case(
        "HEAD-1", accused_staff_id="S0201", accused_department="finance"
    )
    clerk, clerk_case = _case("HEAD-2", accused_staff_id="S0299", accused_department="finance")
    await running.publish(cases=[head_case, clerk_case], complaints=[against_head, clerk])
    head = await running.signed_in(
        "finance-head", "department_head", department="finance", staff_id="S0201"
    )

    listed = await head.get("/cases")
    assert clerk_case.case_id in listed.text
    assert head_case.case_id not in listed.text
    assert "（1 件 cases）" in listed.text
    assert "利益冲突 Conflict of interest (0)" in listed.text
    by_url = await head.get(f"/cases/{head_case.case_id}")
    assert by_url.status_code == 404
    missing = await head.get("/cases/CASE-00000000000000000000")
    assert by_url.text == missing.text, "a hidden case answers as a missing one"
    for search in (head_case.case_id, "S0201", head_case.case_id[:10]):
        found = await head.get("/cases", params={"search": search})
        assert f'data-case="{head_case.case_id}"' not in found.text
        assert "（0 件 cases）" in found.text
    export = await head.get("/cases", params={"format": "csv"})
    assert head_case.case_id not in export.text
    assert clerk_case.case_id in export.text
    acting = await head.post(f"/cases/{head_case.case_id}/finding", data={})
    assert acting.status_code in (403, 404)

    inspector = await running.signed_in(
        "jijian", "discipline_inspection", staff_id="S0302", name="纪检员"
    )
    assert head_case.case_id in (await inspector.get("/cases", params={"conflict": "1"})).text
    office = await running.signed_in("wangmin", "conduct_office", staff_id="S0102", name="王敏")
    for params in ({}, {"search": head_case.case_id}, {"category": "kickback"}):
        page = (await office.get("/cases", params=params)).text
        assert f'data-case="{head_case.case_id}"' in page, f"the office sees it ({params})"


async def test_the_view_log_is_kept_and_shown_to_discipline_inspection(
    running: Running,
) -> None:
    complaint, case = _case("VIEW-1", accused_staff_id="S0201", accused_department="finance")
    await running.publish(cases=[case], complaints=[complaint])
    office = await running.signed_in("jiang", "conduct_office", staff_id="S0111", name="蒋行风")
    await office.get(f"/cases/{case.case_id}")

    inspector = await running.signed_in("han", "discipline_inspection", staff_id="S0303")
    page = await inspector.get(f"/cases/{case.case_id}")
    assert "查阅记录 Who viewed this case" in page.text
    assert "蒋行风（jiang）" in page.text
    leader = await running.signed_in("yang", "leadership")
    assert "查阅记录" not in (await leader.get(f"/cases/{case.case_id}")).text


async def test_an_auditor_has_no_desk(running: Running) -> None:
    one_time = await running.account("audit", "auditor")
    auditor = client(running.http._transport)
    answer = await sign_in_anew(auditor, "audit", one_time, PASSWORD)
    assert answer.status_code == 403
    assert "审计账号不使用案件台" in answer.text


# --- The list ---------------------------------------------------------------------------------


async def test_the_list_filters_counts_and_exports(running: Running) -> None:
    made = [
        _case("LIST-1", category="kickback"),
        _case("LIST-2", category="red_envelope", accused_staff_id="S7001"),
        _case("LIST-3", category="red_envelope", accused_staff_id="-S7002"),
    ]
    await running.publish(cases=[c for _, c in made], complaints=[c for c, _ in made])
    http = await running.signed_in("he", "conduct_office", staff_id="S0112")

    red = await http.get("/cases", params={"category": "red_envelope"})
    assert "（2 件 cases）" in red.text
    assert made[0][1].case_id not in red.text
    # The counts of the other categories are those the list would show with them chosen.
    assert "回扣 kickback (1)</option>" in red.text
    assert "红包 red_envelope (2)</option>" in red.text
    assert "已逾期 Overdue (0)" in red.text
    by_staff = await http.get("/cases", params={"search": "s7001"})
    assert "（1 件 cases）" in by_staff.text

    export = await http.get("/cases", params={"category": "red_envelope", "format": "csv"})
    assert export.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert rows[0][0] == "案件编号"
    assert {row[0] for row in rows[1:]} == {made[1][1].case_id, made[2][1].case_id}
    assert {row[5] for row in rows[1:]} == {"S7001", "'-S7002"}, "no formula runs"
    xlsx = await http.get("/cases", params={"format": "xlsx"})
    assert xlsx.content.startswith(b"PK")


async def test_the_session_endpoint_tells_reporting_who_is_signed_in(running: Running) -> None:
    head = await running.signed_in(
        "pharmacy-head", "department_head", department="pharmacy", staff_id="S2101", name="药剂主任"
    )
    cookie = {"Cookie": f"{COOKIE}={head.cookies[COOKIE]}"}
    bearer = {"Authorization": f"Bearer {READER_KEY}"}

    answer = await running.http.get("/v1/session", headers=cookie | bearer)
    assert answer.status_code == 200
    assert answer.json() | {"signed_in_at": None, "csrf_token": None} == {
        "username": "pharmacy-head",
        "display_name": "药剂主任",
        "role": "department_head",
        "role_zh": "科室负责人",
        "department": "pharmacy",
        "staff_id": "S2101",
        "signed_in_at": None,
        "csrf_token": None,
    }
    assert answer.json()["csrf_token"] == hidden((await head.get("/cases")).text)
    wrong_key = {"Authorization": "Bearer nope"}
    assert (await running.http.get("/v1/session", headers=cookie | wrong_key)).status_code == 401
    assert (await running.http.get("/v1/session", headers=bearer)).status_code == 404
    forged = {"Cookie": f"{COOKIE}={uuid.uuid4().hex}"}
    assert (await running.http.get("/v1/session", headers=forged | bearer)).status_code == 404


async def _signs_in_back_to(running: Running, username: str, asked: str) -> str:
    """Where the desk sends ``username`` after signing in from ``/login?next=asked``."""
    http = client(running.http._transport)
    login = await http.get("/login", params={"next": asked})
    answer = await http.post(
        "/login",
        data={
            "username": username,
            "password": PASSWORD,
            "csrf_token": hidden(login.text),
            "next": asked,
        },
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


async def test_signing_in_goes_back_to_the_reports_asked_for_and_never_to_another_host(
    running: Running,
) -> None:
    await running.signed_in("yang", "leadership", staff_id="S0003")
    one_time = await running.account("audit", "auditor")
    await sign_in_anew(client(running.http._transport), "audit", one_time, PASSWORD)
    dashboard = "http://127.0.0.1:8104/dashboard"  # the desk's QINGLIAN_REPORTING_URL
    login = await client(running.http._transport).get("/login", params={"next": dashboard})
    assert f'name="next" value="{dashboard}"' in login.text

    assert await _signs_in_back_to(running, "yang", dashboard) == dashboard
    assert await _signs_in_back_to(running, "yang", "/cases?overdue=1") == "/cases?overdue=1"
    for elsewhere in (
        "https://evil.example/dashboard",
        "//evil.example/dashboard",
        "/\\evil.example",
        "http://127.0.0.1:8104.evil.example/dashboard",
        "javascript:alert(1)",
    ):
        assert await _signs_in_back_to(running, "yang", elsewhere) == "/cases", elsewhere
    # The auditor has no desk: signing in leads to the reports.
    assert await _signs_in_back_to(running, "audit", "") == dashboard


async def test_a_reply_shows_who_sent_it_once_it_comes_back_on_its_topic(
    running: Running,
) -> None:
    complaint, case = _case("REPLY-1")
    await running.publish(cases=[case], complaints=[complaint])
    http = await running.signed_in("lu", "conduct_office", staff_id="S0113", name="陆行风")
    page = await http.get(f"/cases/{case.case_id}")
    text = "您反映的情况已受理，正在调查。"
    await http.post(
        f"/cases/{case.case_id}/reply",
        data={
            "csrf_token": hidden(page.text),
            "form_token": form_token(page.text, "reply"),
            "text": text,
        },
    )
    assert "答复举报人：处理中 pending" in (await http.get(f"/cases/{case.case_id}")).text

    # Intake publishes the reply in the desk's name; the desk knows which person sent it.
    ((_, body, _),) = running.intake.sent
    assert body == {"case_id": case.case_id, "text": text}
    reply = ReporterReply(
        event_id=uuid.uuid4(), case_id=case.case_id, text=text, sent_by="desk", sent_at=NOW
    )
    await running.read_model.replies([reply])
    # Until the router notes the reply in the case's history, the page keeps refreshing.
    assert "答复举报人：处理中 pending" in (await http.get(f"/cases/{case.case_id}")).text
    await running.publish(cases=[note_reply(case, reply, now=NOW)])
    shown = (await http.get(f"/cases/{case.case_id}")).text
    assert "答复举报人：已生效 applied" in shown
    assert "陆行风（S0113）" in shown.split('class="reporter_replied"')[1].split("</tr>")[0]
    assert "2026-11-25 12:00 · 陆行风（S0113）</p>" in shown, "replies sent: by whom"
    views = await running.desk.casework.store.views.find(case_id=case.case_id)
    assert len(views) == 1, "one entry per person and minute"


async def test_the_list_follows_new_cases_and_the_clock(running: Running) -> None:
    first, first_case = _case("FOLLOW-1")
    await running.publish(cases=[first_case], complaints=[first])
    http = await running.signed_in("kong", "conduct_office", staff_id="S0114")
    assert "（1 件 cases）" in (await http.get("/cases")).text
    assert "已逾期 Overdue (0)" in (await http.get("/cases")).text

    second, second_case = _case("FOLLOW-2")
    await running.publish(cases=[second_case], complaints=[second])
    assert "（2 件 cases）" in (await http.get("/cases")).text
    running.clock.now = first_case.deadline + timedelta(minutes=1)
    later = client(running.http._transport)  # the session went idle meanwhile
    await sign_in(later, "kong", PASSWORD)
    assert "已逾期 Overdue (2)" in (await later.get("/cases")).text
