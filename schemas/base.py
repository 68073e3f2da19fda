"""What every event carries, and the types the contracts share."""

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ModelWrapValidatorHandler,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

HOSPITAL_TIME_ZONE = ZoneInfo("Asia/Shanghai")

# Fixed namespace so event ids are the same on every machine and in every year.
_EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a4e-8a0b-5c7d-9e3f-51a9c0d2b7e4")


def derive_event_id(source_system: str, source_ref: str) -> uuid.UUID:
    """The id of an event: a retried send of the same source reference is the same event."""
    # The length prefix keeps ("ab", "c") and ("a", "bc") apart whatever the characters.
    return uuid.uuid5(_EVENT_ID_NAMESPACE, f"{len(source_system)}:{source_system}:{source_ref}")


EARLIEST_DAY = date(1970, 1, 1)
"""No fact Qinglian records happened before this day; an earlier one is a sender's mistake
(and years near 0 or 9999 break date arithmetic: a bar of two years, a month's start)."""


# What the published JSON Schemas promise ("format": "date-time" and "date", RFC 3339), and
# no more: pydantic alone would also read numbers as seconds since 1970, times without a zone,
# a space for the "T", a day for a time. ASCII digits only, and no newline after the end.
_RFC_3339_DATE_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day_text(value: object) -> object:
    """JSON carries a day as YYYY-MM-DD; code may pass a date."""
    if (isinstance(value, date) and not isinstance(value, datetime)) or (
        isinstance(value, str) and _ISO_DAY.fullmatch(value)
    ):
        return value
    raise ValueError("must be a day written YYYY-MM-DD, e.g. 2026-11-20")


_EARLIEST_MOMENT = datetime(EARLIEST_DAY.year, 1, 1, tzinfo=UTC)
_MOMENT_EXPECTED = (
    "must be an RFC 3339 date-time with its time zone, not before 1970, "
    "e.g. 2026-11-20T14:30:00+08:00"
)


def _aware(value: datetime) -> datetime:
    # Only a datetime object from code can lack a zone (text without one is refused): read it
    # as hospital time.
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=HOSPITAL_TIME_ZONE)
    if value < _EARLIEST_MOMENT:
        raise ValueError(f"must not be before {EARLIEST_DAY}")
    return value


class _Moment:
    """EventTime's validation, done inside pydantic-core: RFC 3339 text, or a datetime from
    code. (Validators in Python, one call per time, were half of the cost of reading an event
    from a topic.)"""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        text = core_schema.chain_schema(
            [
                core_schema.str_schema(pattern=_RFC_3339_DATE_TIME, strip_whitespace=False),
                core_schema.datetime_schema(ge=_EARLIEST_MOMENT),
            ]
        )
        from_code = core_schema.no_info_after_validator_function(
            _aware, core_schema.is_instance_schema(datetime)
        )
        either = core_schema.json_or_python_schema(
            json_schema=text,
            python_schema=core_schema.union_schema([from_code, text]),
            serialization=core_schema.simple_ser_schema("datetime"),
        )
        return core_schema.custom_error_schema(
            either, "date_time_format", custom_error_message=_MOMENT_EXPECTED
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(core_schema.datetime_schema())


def hospital_day(moment: datetime) -> date:
    """The calendar day of ``moment`` in the hospital's time zone."""
    return moment.astimezone(HOSPITAL_TIME_ZONE).date()


def _not_too_early(value: date) -> date:
    if value < EARLIEST_DAY:
        raise ValueError(f"must not be before {EARLIEST_DAY}")
    return value


EventTime = Annotated[datetime, _Moment]
"""A point in time, not before 1970: in JSON, RFC 3339 text with its time zone
("2026-11-20T14:30:00+08:00", "2026-11-20T06:30:00Z"), never a number."""
EventDay = Annotated[date, BeforeValidator(_iso_day_text), AfterValidator(_not_too_early)]
"""A calendar day, not before 1970: in JSON, "YYYY-MM-DD", never a number or a time."""
Flag = Annotated[bool, Field(strict=True)]
"""Yes or no: JSON's true or false, not "yes", "true", 1 or 0."""
YEAR_PATTERN = r"(19[7-9][0-9]|[2-9][0-9]{3})"
"""A year from 1970, for month and period patterns."""

SourceSystem = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_.-]*$")
]
SourceRef = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
"""An identifier from another hospital system: staff number, department code, …"""
AmountCNY = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
"""An amount of money in yuan, exact to the fen."""


class Contract(BaseModel):
    """A message contract: unknown fields are refused, instances never change.

    Its validation errors never show the values they refuse (they may be a complainant's
    words), even when printed in a traceback.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, hide_input_in_errors=True
    )

    @model_validator(mode="wrap")
    @classmethod
    def _no_nul_character(cls, given: Any, validate: ModelWrapValidatorHandler[Self]) -> Self:
        # PostgreSQL's jsonb, where FerretDB keeps documents, cannot hold U+0000: a text with
        # one could be accepted but never stored. Refused here, naming the field. One look at
        # the input per model (a validator on every field was 40% of reading an event).
        if isinstance(given, dict) and _holds_nul(given):
            raise ValidationError.from_exception_data(
                cls.__name__,
                [{"type": _NUL_REFUSED, "loc": place, "input": ""} for place in _nul_places(given)],
            )
        return validate(given)


_NUL_REFUSED = PydanticCustomError("nul_character", "must not contain the NUL character (U+0000)")


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _holds_nul(value: object) -> bool:
    """Whether a text anywhere in ``value`` (input not yet validated) holds U+0000: the quick
    look every model takes, flat loops over the common case of texts and scalars."""
    if isinstance(value, dict):
        if any(type(key) is str and "\x00" in key for key in value):
            return True
        value = value.values()
    elif isinstance(value, str):
        return "\x00" in value
    elif not isinstance(value, _CONTAINERS):
        return False
    for item in value:
        if type(item) is str:
            if "\x00" in item:
                return True
        elif isinstance(item, _CONTAINERS) and _holds_nul(item):
            return True
    return False


def _nul_places(value: object, place: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where in ``value`` a text holds U+0000, to name them (once the quick look found one)."""
    if isinstance(value, str):
        return [place] if "\x00" in value else []
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in ([(*place, key)] if _holds_nul(key) else _nul_places(item, (*place, key)))
        ]
    if isinstance(value, list | tuple | set | frozenset):
        return [found for n, item in enumerate(value) for found in _nul_places(item, (*place, n))]
    return []


class Submission(Contract):
    """What a source system sends: the fact, identified by its own reference.

    Each event type subclasses it together with the model of its facts, and adds
    ``event_type: Literal["<type>"]`` so a batch or the raw topic can tell types apart.
    """

    private_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields intake keeps to itself (encrypted); they never travel on Kafka."""

    source_system: SourceSystem
    source_ref: SourceRef = Field(
        description="The sender's own id for this record; a retry repeats it."
    )
    occurred_at: EventTime


class Event(Contract):
    """A fact accepted by intake, as it travels on Kafka."""

    schema_version: int
    event_id: uuid.UUID
    source_system: SourceSystem
    source_ref: SourceRef
    occurred_at: EventTime
    received_at: EventTime

    @classmethod
    def accept(cls, submission: Submission, *, received_at: datetime, **derived: object) -> Self:
        """The event for an accepted submission, without its private fields."""
        facts = submission.model_dump(exclude=set(submission.private_fields))
        return cls.model_validate(
            {
                **facts,
                **derived,
                "event_id": derive_event_id(submission.source_system, submission.source_ref),
                "received_at": received_at,
            }
        )
