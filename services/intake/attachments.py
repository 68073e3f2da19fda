"""Reporters' attachments: kept sealed under intake's key, like a complaint's contact, and read
back only by a key allowed to (the desk, for the people allowed to see the case).

- A file belongs to a complaint intake accepted, and to a message of it: the complaint itself
  or one addition of information (its event id). Each message has MAX_ATTACHMENTS slots; a
  file's id is an HMAC of its complaint, message and slot, so sending a form again keeps one
  file per slot (the same content: a duplicate; other content: a conflict), the count cannot
  pass the limit even when uploads race (an insert of an existing id is refused atomically,
  on FerretDB too), and nobody can guess an id without intake's key.
- The content is sealed (AES-GCM, bound to its chunk's id) in chunks of CHUNK_BYTES, each a
  document of its own: FerretDB and MongoDB refuse a document over 16 MB, and small
  documents keep each read and write small. The record is stored after every chunk, so a
  record found means a complete file.
- Neither a file's name nor its content is kept in plaintext or written to a log.
"""

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.attachment import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    AttachmentInfo,
    AttachmentType,
    sniffed,
)
from schemas.complaint import ComplaintReceived
from services.intake.crypto import Vault
from services.intake.store import IntakeStore, KeptAttachment, SealedChunk

CHUNK_BYTES = 1024 * 1024


class Kept(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NO_COMPLAINT = "no_complaint"
    REFUSED_TYPE = "refused_type"
    TOO_LARGE = "too_large"


@dataclass(frozen=True)
class Upload:
    complaint_event_id: uuid.UUID
    addition_event_id: uuid.UUID | None
    slot: int
    content: bytes


def _chunk_id(upload: str, index: int) -> str:
    return f"{upload}:{index}"


class Attachments:
    def __init__(self, store: IntakeStore, vault: Vault) -> None:
        self.store = store
        self.vault = vault

    def attachment_id(self, upload: Upload) -> str:
        message = upload.addition_event_id or upload.complaint_event_id
        place = f"attachment|{upload.complaint_event_id}|{message}|{upload.slot}"
        return self.vault.fingerprint(place.encode())[:32]

    async def keep(self, upload: Upload, *, now: datetime) -> tuple[Kept, AttachmentInfo | None]:
        """Keep a file sealed; what became of it, and its record unless refused."""
        kind = sniffed(upload.content)
        if len(upload.content) > MAX_ATTACHMENT_BYTES:
            return Kept.TOO_LARGE, None
        if kind is None:
            return Kept.REFUSED_TYPE, None
        if not 1 <= upload.slot <= MAX_ATTACHMENTS:
            raise ValueError("slot out of range")  # the route's validation keeps it in range
        accepted = await self.store.accepted.get(str(upload.complaint_event_id))
        if accepted is None or not isinstance(accepted.event, ComplaintReceived):
            return Kept.NO_COMPLAINT, None
        record = self._record(upload, kind, now)
        earlier = await self.store.attachments.get(record.attachment_id)
        if earlier is None:
            await self._seal_chunks(record.upload, upload.content)
            if await self.store.attachments.insert(record.attachment_id, record):
                return Kept.NEW, AttachmentInfo.model_validate(record.model_dump())
            await self._forget_chunks(record)  # another upload of this slot came first
            earlier = await self.store.attachments.get(record.attachment_id)
        assert earlier is not None  # noqa: S101 (records are never deleted)
        info = AttachmentInfo.model_validate(earlier.model_dump())
        return (Kept.DUPLICATE if earlier.sha256 == record.sha256 else Kept.CONFLICT), info

    def _record(self, upload: Upload, kind: AttachmentType, now: datetime) -> KeptAttachment:
        size = len(upload.content)
        return KeptAttachment(
            attachment_id=self.attachment_id(upload),
            complaint_event_id=upload.complaint_event_id,
            addition_event_id=upload.addition_event_id,
            slot=upload.slot,
            content_type=kind,
            size=size,
            sha256=hashlib.sha256(upload.content).hexdigest(),
            upload=os.urandom(16).hex(),
            chunks=max(1, -(-size // CHUNK_BYTES)),
            stored_at=now,
        )

    async def _seal_chunks(self, upload: str, content: bytes) -> None:
        chunks = {}
        for index, start in enumerate(range(0, max(len(content), 1), CHUNK_BYTES)):
            chunk_id = _chunk_id(upload, index)
            part = content[start : start + CHUNK_BYTES]
            chunks[chunk_id] = SealedChunk(sealed=self.vault.seal(part, bound_to=chunk_id))
        await self.store.attachment_chunks.insert_many(chunks)

    async def _forget_chunks(self, record: KeptAttachment) -> None:
        for index in range(record.chunks):
            await self.store.attachment_chunks.delete(_chunk_id(record.upload, index))

    async def of_complaints(self, complaint_event_ids: Iterable[uuid.UUID]) -> list[AttachmentInfo]:
        """The attachments of these complaints, in the order of their messages and slots."""
        found: list[KeptAttachment] = []
        for complaint_event_id in complaint_event_ids:
            kept = await self.store.attachments.find(complaint_event_id=complaint_event_id)
            found += sorted(kept.values(), key=lambda k: (k.stored_at, k.slot))
        return [AttachmentInfo.model_validate(k.model_dump()) for k in found]

    async def record(self, attachment_id: str) -> KeptAttachment | None:
        return await self.store.attachments.get(attachment_id)

    async def content(self, record: KeptAttachment) -> AsyncIterator[bytes]:
        """The file, opened chunk by chunk (never whole in memory)."""
        for index in range(record.chunks):
            chunk_id = _chunk_id(record.upload, index)
            chunk = await self.store.attachment_chunks.get(chunk_id)
            if chunk is None:
                raise LookupError("a chunk of a stored attachment is missing")
            yield self.vault.open(chunk.sealed, bound_to=chunk_id)
