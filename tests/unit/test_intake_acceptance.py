"""Intake's acceptance and its raw topics' handler on the in-memory store: what is recorded,
published and answered for each submission, in one wave per call."""

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from pymongo.errors import ServerSelectionTimeoutError

from schemas import topics
from schemas.base import Submission
from schemas.catalogue import ANY_SUBMISSION
from schemas.complaint import ComplaintReceived
from schemas.dead_letter import DeadLetter
from schemas.follow_up import FollowUpCodeIssued
from services.common.consuming import Received, is_outage
from services.common.documents import MemoryDocuments
from services.common.raw_senders import RawSenders
from services.intake.acceptance import Acceptance, Result
from services.intake.crypto import Vault, new_key, parse_key
from services.intake.domain import SubmissionStatus
from services.intake.handlers import IntakeUnavailableError, RawIntake, accept_raw
from services.intake.metrics import IntakeMetrics
from services.intake.store import IntakeStore
from tests.factories import complaint_payload

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
SENDERS = RawSenders.from_toml(
    """
version = "1"

[senders.his]
label_zh = "医院信息系统"
label_en = "HIS"
source_system = "his"
event_types = ["complaint", "satisfaction"]
""",
    source="raw_senders.toml",
)


@dataclass
class Kafka:
    """Publishes into a list; ``down`` makes it unreachable, ``failing`` fails a publish."""

    sent: list[tuple[str, bytes, BaseModel]] = field(default_factory=list)
    down: bool = False
    failing: Callable[[BaseModel], bool] = lambda _: False

    async def publish(self, message: BaseModel, topic: str, key: bytes) -> None:
        if self.failing(message):
            raise ConnectionError("Kafka dropped it")
        self.sent.append((topic, key, message))

    async def reachable(self) -> bool:
        return not self.down

    def on(self, topic: str) -> list[BaseModel]:
        return [message for sent_topic, _, message in self.sent if sent_topic == topic]


@dataclass
class Intake:
    acceptance: Acceptance
    store: IntakeStore
    kafka: Kafka
    vault: Vault

    async def submit(self, *bodies: dict[str, Any]) -> list[Result]:
        submissions: list[Submission] = [ANY_SUBMISSION.validate_python(b) for b in bodies]
        return await self.acceptance.submit(submissions, now=NOW)


@pytest.fixture
def intake() -> Intake:
    store = IntakeStore.on(MemoryDocuments(), key_cache_seconds=0)
    kafka, vault = Kafka(), Vault(parse_key(new_key()))
    acceptance = Acceptance(
        store=store,
        vault=vault,
        publish=kafka.publish,
        kafka_reachable=kafka.reachable,
        future_tolerance=timedelta(minutes=5),
    )
    return Intake(acceptance, store, kafka, vault)


def complaint(ref: str, **overrides: Any) -> dict[str, Any]:
    return {"event_type": "complaint", **complaint_payload(source_ref=ref, **overrides)}


async def test_an_accepted_complaint_is_published_with_its_codes_digest_and_never_the_code(
    intake: Intake,
) -> None:
    (result,) = await intake.submit(complaint("A-1"))

    assert result.status is SubmissionStatus.ACCEPTED
    assert result.follow_up_code is not None
    (event,) = intake.kafka.on(topics.COMPLAINTS)
    (issued,) = intake.kafka.on(topics.FOLLOW_UP_CODES)
    assert isinstance(issued, FollowUpCodeIssued)
    assert issued.complaint_event_id == result.event_id == getattr(event, "event_id", None)
    assert issued.code_digest == hashlib.sha256(result.follow_up_code.encode()).hexdigest()
    for _, key, message in intake.kafka.sent:
        assert result.follow_up_code not in message.model_dump_json()
        assert result.follow_up_code.encode() not in key


async def test_a_repeat_is_a_duplicate_with_the_first_code_and_is_not_published_again(
    intake: Intake,
) -> None:
    (first,) = await intake.submit(complaint("A-2"))
    (again,) = await intake.submit(complaint("A-2"))

    assert (again.status, again.event_id) == (SubmissionStatus.DUPLICATE, first.event_id)
    assert again.follow_up_code == first.follow_up_code
    assert len(intake.kafka.on(topics.COMPLAINTS)) == 1
    assert len(intake.kafka.on(topics.FOLLOW_UP_CODES)) == 1


async def test_the_same_reference_with_other_content_is_a_conflict_and_the_first_stands(
    intake: Intake,
) -> None:
    (first,) = await intake.submit(complaint("A-3"))
    (conflict,) = await intake.submit(complaint("A-3", description="改口：其实没有收红包。"))

    assert (conflict.status, conflict.event_id) == (SubmissionStatus.CONFLICT, first.event_id)
    stored = await intake.store.accepted.get(str(first.event_id))
    assert stored is not None
    assert isinstance(stored.event, ComplaintReceived)
    assert stored.event.description == complaint_payload()["description"]


async def test_a_reference_twice_in_one_call_is_accepted_once(intake: Intake) -> None:
    results = await intake.submit(
        complaint("A-4"), complaint("A-4"), complaint("A-4", description="另一段话。")
    )

    assert [r.status for r in results] == [
        SubmissionStatus.ACCEPTED,
        SubmissionStatus.DUPLICATE,
        SubmissionStatus.CONFLICT,
    ]
    assert results[1].follow_up_code == results[0].follow_up_code
    assert len(intake.kafka.on(topics.COMPLAINTS)) == 1


async def test_while_kafka_is_unreachable_nothing_is_published_and_a_retry_publishes_once(
    intake: Intake,
) -> None:
    intake.kafka.down = True
    (refused,) = await intake.submit(complaint("A-5"))
    intake.kafka.down = False
    (retried,) = await intake.submit(complaint("A-5"))
    (again,) = await intake.submit(complaint("A-5"))

    assert refused.status is SubmissionStatus.UNAVAILABLE
    # Recorded the first time, published at the retry: what was refused is not lost.
    assert (retried.status, again.status) == (SubmissionStatus.DUPLICATE,) * 2
    assert retried.follow_up_code == again.follow_up_code is not None
    assert len(intake.kafka.on(topics.COMPLAINTS)) == 1
    assert len(intake.kafka.on(topics.FOLLOW_UP_CODES)) == 1


async def test_a_complaint_whose_code_was_not_published_is_not_answered_accepted(
    intake: Intake,
) -> None:
    intake.kafka.failing = lambda message: isinstance(message, FollowUpCodeIssued)
    (result,) = await intake.submit(complaint("A-6"))

    assert result.status is SubmissionStatus.UNAVAILABLE
    assert await intake.store.published.get(str(result.event_id)) is None


async def test_when_the_store_is_down_nothing_is_accepted(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(*_: Any) -> set[str]:
        raise ServerSelectionTimeoutError("no store")

    monkeypatch.setattr(intake.store.accepted, "insert_many", down)
    results = await intake.submit(complaint("A-7"), complaint("A-8"))

    assert [r.status for r in results] == [SubmissionStatus.UNAVAILABLE] * 2
    assert intake.kafka.sent == []


async def test_a_time_in_the_future_is_invalid_naming_the_field(intake: Intake) -> None:
    (result,) = await intake.submit(complaint("A-9", occurred_at="2027-06-01T09:00:00+08:00"))

    assert result.status is SubmissionStatus.INVALID
    assert [p.field for p in result.problems] == ["occurred_at"]


async def test_contact_details_are_kept_sealed_to_their_event(intake: Intake) -> None:
    contact = {"phone": "13912345678"}
    (result,) = await intake.submit(complaint("A-10", complainant_contact=contact))

    stored = await intake.store.accepted.get(str(result.event_id))
    assert stored is not None
    assert stored.contact_sealed is not None
    assert b"13912345678" not in stored.contact_sealed
    opened = intake.vault.open(stored.contact_sealed, bound_to=str(result.event_id))
    assert json.loads(opened)["phone"] == "13912345678"
    (event,) = intake.kafka.on(topics.COMPLAINTS)
    assert "13912345678" not in event.model_dump_json()


# --- the raw topics' handler -------------------------------------------------------------


def raw_intake(intake: Intake, registry: CollectorRegistry) -> RawIntake:
    return RawIntake(
        intake.acceptance,
        intake.vault,
        intake.kafka.publish,
        IntakeMetrics.on(registry),
        lambda: NOW,
    )


def received(offset: int, value: bytes) -> Received[bytes]:
    return Received(value=value, topic=topics.raw_topic("his"), partition=0, offset=offset)


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


async def test_a_raw_batch_is_accepted_with_one_acceptance_call_and_refusals_are_dead_letters(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    submit = intake.acceptance.submit

    async def counted(submissions: list[Submission], *, now: datetime) -> list[Result]:
        calls.append(len(submissions))
        return await submit(submissions, now=now)

    monkeypatch.setattr(intake.acceptance, "submit", counted)
    batch = [
        received(0, encoded(complaint("R-1", source_system="his"))),
        received(1, b"not json: call 13800138000"),
        received(2, encoded(complaint("R-2", source_system="hr"))),
        received(3, encoded(complaint("R-3", source_system="his"))),
        received(4, encoded(complaint("R-1", source_system="his", description="另一段。"))),
    ]

    await accept_raw(raw_intake(intake, CollectorRegistry()), "his", SENDERS.senders["his"], batch)

    assert calls == [3]
    assert len(intake.kafka.on(topics.COMPLAINTS)) == 2
    letters = [m for m in intake.kafka.on(topics.DEAD_LETTERS) if isinstance(m, DeadLetter)]
    assert {(letter.source_offset, letter.reason) for letter in letters} == {
        (1, "not_json"),
        (2, "forbidden"),
        (4, "conflict"),
    }
    for letter in letters:
        assert letter.original is None
        assert letter.original_sealed is not None
        assert b"13800138000" not in letter.model_dump_json().encode()


async def test_a_raw_batch_that_kafka_cannot_take_is_retried_whole_as_an_outage(
    intake: Intake,
) -> None:
    intake.kafka.down = True
    batch = [
        received(0, encoded(complaint("R-4", source_system="his"))),
        received(1, b"{}"),
    ]
    handle: Callable[[], Awaitable[None]] = lambda: accept_raw(  # noqa: E731
        raw_intake(intake, CollectorRegistry()), "his", SENDERS.senders["his"], batch
    )

    with pytest.raises(IntakeUnavailableError) as raised:
        await handle()

    assert is_outage(raised.value)  # waited out, never dead-lettered
    assert intake.kafka.sent == []  # not even the refusal: the whole batch comes again
    intake.kafka.down = False
    await handle()
    assert len(intake.kafka.on(topics.COMPLAINTS)) == 1
    assert len(intake.kafka.on(topics.DEAD_LETTERS)) == 1
