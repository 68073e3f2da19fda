"""Records that could not be accepted, kept with the reason so nothing is lost."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field

from schemas.base import Contract, SourceSystem


class Problem(Contract):
    """What is wrong with one field; never the submitted value itself."""

    field: str
    reason: str


class DeadLetter(Contract):
    """A record intake refused. The original bytes are sealed with intake's key because they may
    hold a complainant's contact details; the redrive command opens them again."""

    # Bytes travel as base64 in JSON; in Python they are the bytes themselves.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    schema_version: Literal[1] = 1
    dead_letter_id: uuid.UUID
    source_topic: str
    source_partition: int
    source_offset: int
    source_system: SourceSystem | None = Field(
        default=None, description="As the record named it, when it could be read."
    )
    reason: Literal["not_json", "invalid", "conflict", "forbidden"]
    problems: tuple[Problem, ...] = ()
    original_sealed: bytes
    key_sealed: bytes | None = None
    dead_lettered_at: datetime
