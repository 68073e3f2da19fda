"""What intake keeps, declared once on the store adapter (services/common/documents.py):

- ``intake_events``: each accepted submission under its event id, the first one stored wins
  (that is the idempotency on ``source_ref``), with its fingerprint, the event as first
  published, and what stays sealed: the complainant's contact details and the follow-up code;
- ``intake_published``: a mark per event Kafka acknowledged. Inserted, never updated: an insert
  of a new id is one atomic statement on every store, and costs FerretDB no read;
- ``intake_api_keys``: the source systems' API keys (services/common/credentials.py);
- ``intake_redrives``: the dead letters the redrive command sent back;
- ``intake_attachments`` and ``intake_attachment_chunks``: reporters' files, each a small
  record (services/intake/attachments.py) and its content sealed in chunks.
"""

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, PlainSerializer

from schemas.attachment import AttachmentInfo
from schemas.catalogue import AnyEvent
from schemas.follow_up import CodeDigest
from services.common.credentials import Credentials
from services.common.documents import Documents, Records
from services.intake.crypto import API_KEY_PREFIX


def _from_base64(value: object) -> object:
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


Sealed = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda value: base64.b64encode(value).decode(), when_used="json"),
]
"""Sealed bytes (crypto.Vault), kept as base64 text."""


class SealedCode(BaseModel):
    digest: CodeDigest
    sealed: Sealed


class Accepted(BaseModel):
    """A submission intake accepted."""

    event: AnyEvent
    """The event as first published: a duplicate is answered, and republished, with it."""
    fingerprint: str
    claim: str
    """The acceptance call that stored it: meeting its own record again (the store blinked
    after storing it) is no repeat."""
    follow_up: SealedCode | None = None
    contact_sealed: Sealed | None = None


class Published(BaseModel):
    at: datetime


class Redriven(BaseModel):
    at: datetime
    topic: str


class KeptAttachment(AttachmentInfo):
    """An attachment's record, stored after all its chunks: present means complete."""

    upload: str
    """The random id its chunks are kept under (``<upload>:<n>``): two uploads of one slot
    at once write chunks of their own, and the record first stored names the winner's."""
    chunks: int
    stored_at: datetime


class SealedChunk(BaseModel):
    sealed: Sealed


@dataclass(frozen=True)
class IntakeStore:
    accepted: Records[Accepted]
    published: Records[Published]
    redrives: Records[Redriven]
    keys: Credentials
    attachments: Records[KeptAttachment]
    attachment_chunks: Records[SealedChunk]

    @classmethod
    def on(cls, documents: Documents, *, key_cache_seconds: float) -> Self:
        return cls(
            accepted=documents.records("intake_events", Accepted),
            published=documents.records("intake_published", Published),
            redrives=documents.records("intake_redrives", Redriven),
            keys=Credentials(
                documents,
                collection="intake_api_keys",
                prefix=API_KEY_PREFIX,
                cache_seconds=key_cache_seconds,
            ),
            attachments=documents.records(
                "intake_attachments", KeptAttachment, fields=("complaint_event_id",)
            ),
            attachment_chunks=documents.records("intake_attachment_chunks", SealedChunk),
        )
