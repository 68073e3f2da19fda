"""Attachments on the portal's forms as a reporter meets them, in milliseconds (the app on the
in-memory store, a recording intake and Kafka): a photo is sent to intake without its EXIF
after the complaint, in its slot under the complaint's event id; a wrong type, a file too
big or too many files are refused naming the field in Chinese, keeping what was typed and
sending nothing; files added on the follow-up page go under the addition's event id."""

import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from schemas.attachment import MAX_ATTACHMENT_BYTES
from schemas.follow_up import ReporterAddition
from services.intake.crypto import new_follow_up_code
from tests.portal import Running, hidden, running_portal
from tests.unit.test_attachments import GPS_IFD, MARKER, pdf, photo
from tests.unit.test_portal_pages import COMPLAINT, NOW

Files = list[tuple[str, tuple[str, bytes, str]]]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_portal(tmp_path, NOW) as portal:
        yield portal


async def _file_complaint(browser: httpx.AsyncClient, files: Files) -> httpx.Response:
    opened = await browser.get("/")
    tokens = {"csrf_token": hidden(opened.text), "form_token": hidden(opened.text, "form_token")}
    return await browser.post("/", data=tokens | COMPLAINT, files=files)


def _photo(name: str = "IMG_0001.jpg", content: bytes | None = None) -> tuple[str, tuple]:  # type: ignore[type-arg]
    return ("attachments", (name, content if content is not None else photo(), "image/jpeg"))


async def test_a_photo_goes_to_intake_after_the_complaint_without_its_exif(
    running: Running,
) -> None:
    async with running.browser() as browser:
        filed = await _file_complaint(browser, [_photo(), ("attachments", ("a.pdf", pdf(), ""))])

    assert filed.status_code == 200, filed.text
    assert "已收到附件 2 个" in filed.text
    ((_, body, _),) = running.intake.sent
    complaint_event_id = running.intake.events[body["source_ref"]]
    ((first, image), (second, document)) = sorted(running.intake.files, key=lambda f: f[0]["slot"])
    assert first == {"complaint_event_id": complaint_event_id, "slot": "1"}
    assert second == {"complaint_event_id": complaint_event_id, "slot": "2"}
    with Image.open(io.BytesIO(image)) as sent:
        assert sent.format == "JPEG"
        assert not sent.getexif().get_ifd(GPS_IFD)
    assert MARKER.encode() not in image
    assert document == pdf()


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([_photo("photo.jpg", b"<html>not a photo</html>")], "只接受 JPEG、PNG、WebP 图片或 PDF"),
        ([_photo("big.pdf", pdf() + b" " * MAX_ATTACHMENT_BYTES)], "不能超过 10 MB"),
        ([_photo(f"{n}.jpg") for n in range(6)], "最多上传 5 个文件"),
    ],
    ids=["type-by-content", "over-10-mb", "six-files"],
)
async def test_a_refused_file_is_named_in_chinese_what_was_typed_is_kept_and_nothing_sent(
    running: Running,
    files: Files,
    reason: str,
) -> None:
    async with running.browser() as browser:
        refused = await _file_complaint(browser, files)

    assert refused.status_code == 422
    assert "附件：" in refused.text
    assert reason in refused.text
    assert COMPLAINT["description"] in refused.text
    assert running.intake.sent == []
    assert running.intake.files == []


async def test_files_that_did_not_arrive_are_said_beside_the_code(running: Running) -> None:
    running.intake.files_down = True
    async with running.browser() as browser:
        filed = await _file_complaint(browser, [_photo()])

    assert filed.status_code == 200
    assert 'id="follow-up-code"' in filed.text
    assert "附件未能全部提交" in filed.text


async def test_files_added_on_the_follow_up_page_go_under_the_additions_event_id(
    running: Running,
) -> None:
    complaint_id, code = uuid.uuid4(), new_follow_up_code()
    await running.learn(code, complaint_id)
    async with running.browser() as browser:
        opened = await browser.get("/follow-up")
        shown = await browser.post(
            "/follow-up", data={"csrf_token": hidden(opened.text), "code": code}
        )
        added = await browser.post(
            "/follow-up/add",
            data={"csrf_token": hidden(shown.text), "code": code, "text": "收据照片见附件。"},
            files=[_photo("收据.jpg")],
        )

    assert added.status_code == 200, added.text
    assert "附件 1 个" in added.text
    ((_, _, addition),) = running.kafka.sent
    assert isinstance(addition, ReporterAddition)
    ((query, image),) = running.intake.files
    assert query == {
        "complaint_event_id": str(complaint_id),
        "addition_event_id": str(addition.event_id),
        "slot": "1",
    }
    assert MARKER.encode() not in image
