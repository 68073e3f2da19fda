"""Records that could not be accepted, kept with the reason so nothing is lost."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from schemas.base import Contract, SourceSystem


class Problem(Contract):
    """What is wrong with one field; never the submitted value itself."""

    field: str
    reason: str


def problems_of(errors: Iterable[Any]) -> list[Problem]:
    """Pydantic's errors (``ValidationError.errors()``) as field + reason, without the values.
    A field's name is the sender's, and a reason may quote the character it trips on: U+0000
    in either is shown escaped (no contract keeps it)."""
    return [
        Problem(
            field=_escaped(".".join(str(part) for part in error["loc"])) or "body",
            reason=_escaped(error["msg"]),
        )
        for error in errors
    ]


def _escaped(text: str) -> str:
    return text.replace("\x00", "\\u0000")


class DeadLetter(Contract):
    """A record that was refused or could not be handled, kept whole with the reason.

    Records intake refused are sealed with intake's key (``original_sealed``): they may hold a
    complainant's contact details. Records a service could not handle (``handler_failed``) come
    from Qinglian's own topics, which never carry contact details, and are kept as they were
    (``original``). The redrive command sends either back to its topic."""

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
    reason: Literal["not_json", "invalid", "conflict", "forbidden", "handler_failed"]
    problems: tuple[Problem, ...] = ()
    original_sealed: bytes | None = None
    key_sealed: bytes | None = None
    original: bytes | None = None
    key: bytes | None = None
    failed_in: str | None = Field(
        default=None, description="For handler_failed: the service that could not handle it."
    )
    attempts: int | None = Field(default=None, description="How often the handler was tried.")
    dead_lettered_at: datetime

    @model_validator(mode="after")
    def _original_kept_one_way(self) -> Self:
        if (self.original_sealed is None) == (self.original is None):
            raise ValueError("keep the original either sealed or as it was, not both or neither")
        return self
