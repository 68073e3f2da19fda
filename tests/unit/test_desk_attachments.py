"""A reporter's files on the desk's case page, in milliseconds (the desk on the in-memory
store, a recording intake keeping the files): the page links each file of the case; the link
hands the file over as a download to a person who may see the case, and to nobody else —
not signed in, another department's head, or through another case. The same against the
real intake: tests/integration/test_attachments.py."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from schemas.attachment import AttachmentInfo, AttachmentType
from services.desk import signin
from tests.desk import Running, complaint_and_case, running_desk

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
PHOTO = b"\xff\xd8\xff\xe0 a photo"


@pytest.fixture(autouse=True)
def quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_desk(tmp_path, NOW) as desk:
        yield desk


def _file(complaint_event_id: uuid.UUID, content: bytes = PHOTO) -> AttachmentInfo:
    return AttachmentInfo(
        attachment_id=uuid.uuid4().hex,
        complaint_event_id=complaint_event_id,
        slot=1,
        content_type=AttachmentType.JPEG,
        size=len(content),
        sha256="0" * 64,
    )


async def test_the_case_page_links_its_files_and_the_link_hands_over_a_download(
    running: Running,
) -> None:
    complaint, case = complaint_and_case("FILE-1", received_at=RECEIVED)
    await running.publish(cases=[case], complaints=[complaint])
    info = _file(complaint.event_id)
    running.intake.files[info.attachment_id] = (info, PHOTO)
    office = await running.signed_in("zheng", "conduct_office", staff_id="S0106")

    page = await office.get(f"/cases/{case.case_id}")
    link = f"/cases/{case.case_id}/attachments/{info.attachment_id}"
    assert f'href="{link}"' in page.text
    assert "投诉附件 1（JPG" in page.text

    got = await office.get(link)
    assert got.status_code == 200
    assert got.content == PHOTO
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"].startswith("default-src 'none'")


async def test_a_file_is_refused_to_anyone_who_may_not_see_its_case_or_through_another_case(
    running: Running,
) -> None:
    complaint, case = complaint_and_case(
        "FILE-2", received_at=RECEIVED, accused_department="finance", category="kickback"
    )
    other, other_case = complaint_and_case("FILE-3", received_at=RECEIVED)
    await running.publish(cases=[case, other_case], complaints=[complaint, other])
    info = _file(complaint.event_id)
    running.intake.files[info.attachment_id] = (info, PHOTO)
    link = f"/cases/{case.case_id}/attachments/{info.attachment_id}"

    anonymous = await running.http.get(link)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login"
    head = await running.signed_in(
        "nursing-head", "department_head", department="nursing", staff_id="S0501"
    )
    assert (await head.get(link)).status_code == 404
    office = await running.signed_in("zheng", "conduct_office", staff_id="S0106")
    through_other = f"/cases/{other_case.case_id}/attachments/{info.attachment_id}"
    assert (await office.get(through_other)).status_code == 404
    assert (await office.get(link)).status_code == 200
