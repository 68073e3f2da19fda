"""Attachments a reporter adds to a complaint or to information added later (photos, PDFs):
what is taken, how a file's type is known (by its first bytes, never by its name), and what
intake tells about one it keeps. Shared by the portal (which checks and cleans a file before
sending it), intake (which checks again and keeps it sealed) and the desk (which lists them).
"""

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, StringConstraints

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 5
"""At most this many files per message: a complaint, or one addition of information."""

AttachmentId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]


class AttachmentType(StrEnum):
    """The types taken, as the content type a file is served with."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    PDF = "application/pdf"

    @property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(self, "pdf")

    @property
    def is_image(self) -> bool:
        return self is not AttachmentType.PDF


def sniffed(content: bytes) -> AttachmentType | None:
    """The type a file's first bytes say it is (its signature), or None for any other."""
    if content.startswith(b"\xff\xd8\xff"):
        return AttachmentType.JPEG
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return AttachmentType.PNG
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return AttachmentType.WEBP
    if content.startswith(b"%PDF-"):
        return AttachmentType.PDF
    return None


class AttachmentInfo(BaseModel):
    """What intake tells about an attachment it keeps (never its content or its name)."""

    attachment_id: AttachmentId
    complaint_event_id: uuid.UUID
    addition_event_id: uuid.UUID | None = None
    """Set when it came with information added later rather than with the complaint."""
    slot: int
    """Its place (1 to MAX_ATTACHMENTS) among the files of its message."""
    content_type: AttachmentType
    size: int
    sha256: str
