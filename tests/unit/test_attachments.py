"""Reporters' attachments without I/O: a file's type known by its content, never its name; an
image's metadata gone (EXIF with its GPS position, XMP, text) while the picture stays upright;
the size and count limits; intake keeping files sealed in chunks on the in-memory store."""

import hashlib
import io
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from schemas.attachment import MAX_ATTACHMENT_BYTES, AttachmentType, sniffed
from schemas.complaint import ComplaintReceived
from services.common.documents import MemoryDocuments
from services.intake.attachments import CHUNK_BYTES, Attachments, Kept, Upload
from services.intake.crypto import Vault, new_key, parse_key
from services.intake.store import Accepted, IntakeStore
from services.portal.attachments import AttachmentRefusedError, clean, cleaned_all
from tests.factories import complaint_event

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
GPS_IFD = 0x8825
ORIENTATION = 0x0112
MARKER = "QINGLIAN-SECRET-MARKER"


def photo(
    kind: str = "JPEG", size: tuple[int, int] = (40, 20), orientation: int | None = None
) -> bytes:
    """A photo as a phone sends it: EXIF with the camera, the GPS position, and XMP."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker " + MARKER  # Make
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (31.0, 14.0, 2.0), 3: "E", 4: (121.0, 28.0, 5.0)})
    if orientation:
        exif[ORIENTATION] = orientation
    out = io.BytesIO()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{MARKER}</x:xmpmeta>'.encode()
    image.save(out, format=kind, exif=exif, xmp=xmp)
    return out.getvalue()


def pdf(text: str = MARKER) -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
        + f"2 0 obj ({text}) endobj\n".encode()
        + b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


# --- what a file is ---------------------------------------------------------------------------


def test_a_type_is_known_by_the_content_not_the_name() -> None:
    assert sniffed(photo("JPEG")) is AttachmentType.JPEG
    assert sniffed(photo("PNG")) is AttachmentType.PNG
    assert sniffed(photo("WEBP")) is AttachmentType.WEBP
    assert sniffed(pdf()) is AttachmentType.PDF
    for other in (b"<html><script>alert(1)</script>", b"GIF89a....", b"MZ\x90\x00", b"PK\x03\x04"):
        assert sniffed(other) is None
    with pytest.raises(AttachmentRefusedError, match="按文件内容识别"):
        clean(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>")


def test_a_file_with_a_photos_signature_that_is_no_photo_is_refused() -> None:
    with pytest.raises(AttachmentRefusedError, match="图片无法读取"):
        clean(b"\xff\xd8\xff" + b"not really a jpeg" * 10)
    with pytest.raises(AttachmentRefusedError, match="图片无法读取"):
        clean(b"\x89PNG\r\n\x1a\n" + photo("JPEG"))  # a PNG signature, JPEG inside


@given(st.binary(max_size=2048))
def test_any_bytes_are_taken_or_refused_with_a_reason_never_an_error(content: bytes) -> None:
    try:
        cleaned = clean(content)
    except AttachmentRefusedError:
        return
    assert sniffed(cleaned.content) is cleaned.content_type


# --- what an image keeps -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP"])
def test_an_image_with_exif_gps_comes_out_with_no_metadata_at_all(kind: str) -> None:
    sent = photo(kind)
    with Image.open(io.BytesIO(sent)) as before:
        assert before.getexif().get_ifd(GPS_IFD), "the test photo carries a GPS position"
    cleaned = clean(sent)
    with Image.open(io.BytesIO(cleaned.content)) as after:
        assert after.format == kind
        assert dict(after.getexif()) == {}
        assert not after.getexif().get_ifd(GPS_IFD)
        assert after.size == (40, 20)
        assert after.convert("RGB").getpixel((20, 10))[0] > 150  # still the red picture
    assert MARKER.encode() not in cleaned.content
    assert b"Exif\x00\x00" not in cleaned.content


def test_png_text_chunks_are_dropped() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", MARKER)
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="PNG", pnginfo=text)
    assert MARKER.encode() in out.getvalue()
    assert MARKER.encode() not in clean(out.getvalue()).content


def test_a_photo_taken_sideways_stays_upright_once_its_exif_is_gone() -> None:
    cleaned = clean(photo("JPEG", size=(40, 20), orientation=6))  # rotate 90° to show
    with Image.open(io.BytesIO(cleaned.content)) as after:
        assert after.size == (20, 40)


def test_a_pdf_is_checked_by_its_signature_and_kept_as_sent() -> None:
    assert clean(pdf()).content == pdf()
    with pytest.raises(AttachmentRefusedError):
        clean(b"<html>" + pdf())  # the signature must open the file


# --- limits ------------------------------------------------------------------------------------


def test_a_file_over_10_mb_is_refused_and_one_at_10_mb_taken() -> None:
    padding = MAX_ATTACHMENT_BYTES - len(pdf())
    assert len(clean(pdf() + b" " * padding).content) == MAX_ATTACHMENT_BYTES
    with pytest.raises(AttachmentRefusedError, match="10 MB"):
        clean(pdf() + b" " * (padding + 1))


def test_at_most_five_files_and_a_refusal_names_which_file() -> None:
    assert len(cleaned_all([pdf()] * 5)) == 5
    with pytest.raises(AttachmentRefusedError, match="最多上传 5 个文件"):
        cleaned_all([pdf()] * 6)
    with pytest.raises(AttachmentRefusedError, match="第 2 个文件"):
        cleaned_all([pdf(), b"plain text"])


# --- intake keeps them sealed ------------------------------------------------------------------


def _intake() -> tuple[Attachments, ComplaintReceived]:
    store = IntakeStore.on(MemoryDocuments(), key_cache_seconds=0)
    return Attachments(store, Vault(parse_key(new_key()))), complaint_event()


async def _accepted(attachments: Attachments, complaint: ComplaintReceived) -> None:
    accepted = Accepted(event=complaint, fingerprint="f", claim="c")
    await attachments.store.accepted.insert(str(complaint.event_id), accepted)


async def _read(attachments: Attachments, attachment_id: str) -> bytes:
    record = await attachments.record(attachment_id)
    assert record is not None
    return b"".join([part async for part in attachments.content(record)])


async def test_a_file_is_kept_sealed_in_chunks_and_read_back_whole() -> None:
    attachments, complaint = _intake()
    await _accepted(attachments, complaint)
    content = pdf() + bytes(range(256)) * (3 * CHUNK_BYTES // 256)  # over three chunks
    kept, info = await attachments.keep(Upload(complaint.event_id, None, 1, content), now=NOW)
    assert kept is Kept.NEW
    assert info is not None
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    assert info.size == len(content)
    assert info.content_type is AttachmentType.PDF
    assert await _read(attachments, info.attachment_id) == content
    record = await attachments.record(info.attachment_id)
    assert record is not None
    assert record.chunks == 4
    for index in range(4):
        chunk = await attachments.store.attachment_chunks.get(f"{record.upload}:{index}")
        assert chunk is not None
        assert len(chunk.sealed) <= CHUNK_BYTES + 64
        assert MARKER.encode() not in chunk.sealed


async def test_a_slot_keeps_one_file_a_resend_is_a_duplicate_another_file_a_conflict() -> None:
    attachments, complaint = _intake()
    await _accepted(attachments, complaint)
    first = Upload(complaint.event_id, None, 1, pdf("first"))
    assert (await attachments.keep(first, now=NOW))[0] is Kept.NEW
    assert (await attachments.keep(first, now=NOW))[0] is Kept.DUPLICATE
    other = Upload(complaint.event_id, None, 1, pdf("other"))
    assert (await attachments.keep(other, now=NOW))[0] is Kept.CONFLICT
    addition = Upload(complaint.event_id, uuid.uuid4(), 1, pdf("other"))
    assert (await attachments.keep(addition, now=NOW))[0] is Kept.NEW
    listed = await attachments.of_complaints([complaint.event_id])
    assert [(a.slot, a.addition_event_id is None) for a in listed] == [(1, True), (1, False)]


async def test_intake_refuses_a_file_of_no_complaint_of_another_type_or_too_big() -> None:
    attachments, complaint = _intake()
    unknown = Upload(complaint.event_id, None, 1, pdf())
    assert (await attachments.keep(unknown, now=NOW))[0] is Kept.NO_COMPLAINT
    await _accepted(attachments, complaint)
    html = Upload(complaint.event_id, None, 1, b"<html>")
    assert (await attachments.keep(html, now=NOW))[0] is Kept.REFUSED_TYPE
    big = Upload(complaint.event_id, None, 1, pdf() + b" " * MAX_ATTACHMENT_BYTES)
    assert (await attachments.keep(big, now=NOW))[0] is Kept.TOO_LARGE
