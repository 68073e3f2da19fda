"""The portal's follow-ups and wrong-code limit on the in-memory store: what a reporter sees
as codes, cases and replies arrive (in any order, again after a replay), and what they add."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from schemas import topics
from schemas.case import CaseKind, CaseState, CaseUpdated, derive_case_id
from schemas.follow_up import FollowUpCodeIssued, ReporterAddition, ReporterReply
from services.common.documents import MemoryDocuments
from services.intake.crypto import new_follow_up_code
from services.portal.domain import KnownCode
from services.portal.follow_ups import FollowUps, KafkaUnreachableError
from services.portal.store import PortalStore
from services.portal.wrong_codes import WrongCodeLimit
from tests.factories import complaint_event, routed_case
from tests.portal import Kafka

RECEIVED = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@dataclass
class Portal:
    follow_ups: FollowUps
    store: PortalStore
    kafka: Kafka

    async def issue(self, complaint_event_id: uuid.UUID) -> str:
        """A code intake gave with the complaint, as the portal learns it."""
        code = new_follow_up_code()
        await self.follow_ups.learn_codes(
            [
                FollowUpCodeIssued(
                    complaint_event_id=complaint_event_id,
                    code_digest=hashlib.sha256(code.encode()).hexdigest(),
                    received_at=RECEIVED,
                )
            ]
        )
        return code

    async def known(self, code: str) -> KnownCode:
        known = await self.follow_ups.known(code)
        assert known is not None
        return known


@pytest.fixture
def portal() -> Portal:
    store, kafka = PortalStore(MemoryDocuments()), Kafka()
    return Portal(
        FollowUps(store, publish=kafka.publish, kafka_reachable=kafka.reachable), store, kafka
    )


def case_of(
    *complaint_ids: uuid.UUID, revision: int, state: CaseState, at: datetime
) -> CaseUpdated:
    """A complaint case resting on these complaints (the first opened it)."""
    opened = routed_case(complaint_event(), now=RECEIVED)
    return opened.model_copy(
        update={
            "case_id": derive_case_id(complaint_ids[0]),
            "source_event_ids": complaint_ids,
            "revision": revision,
            "state": state,
            "updated_at": at,
        }
    )


def reply(case_id: str, text: str, at: datetime) -> ReporterReply:
    return ReporterReply(
        event_id=uuid.uuid4(), case_id=case_id, text=text, sent_by="conduct-office", sent_at=at
    )


async def test_a_code_is_known_once_its_digest_arrived_and_shows_the_complaint_received(
    portal: Portal,
) -> None:
    complaint = uuid.uuid4()
    assert await portal.follow_ups.known(new_follow_up_code()) is None
    code = await portal.issue(complaint)

    view = await portal.follow_ups.view(await portal.known(code))

    assert (view.status, view.updated_at, view.replies) == ("received", RECEIVED, [])


async def test_the_status_follows_the_highest_revision_whatever_order_the_cases_come_in(
    portal: Portal,
) -> None:
    complaint = uuid.uuid4()
    code = await portal.issue(complaint)
    later = RECEIVED + timedelta(days=2)
    assigned = case_of(complaint, revision=2, state=CaseState.ASSIGNED, at=RECEIVED)
    investigating = case_of(complaint, revision=3, state=CaseState.INVESTIGATING, at=later)

    await portal.follow_ups.follow_cases([investigating, assigned])
    await portal.follow_ups.follow_cases([assigned])  # a replay of an older revision

    view = await portal.follow_ups.view(await portal.known(code))
    assert (view.status, view.updated_at) == ("investigating", later)


async def test_a_case_that_came_before_the_code_is_shown_once_the_code_is_known(
    portal: Portal,
) -> None:
    complaint = uuid.uuid4()
    await portal.follow_ups.follow_cases(
        [case_of(complaint, revision=2, state=CaseState.ASSIGNED, at=RECEIVED)]
    )
    code = await portal.issue(complaint)

    assert (await portal.follow_ups.view(await portal.known(code))).status == "assigned"


async def test_the_office_replies_to_the_reporter_of_the_cases_first_complaint_only(
    portal: Portal,
) -> None:
    first, linked = uuid.uuid4(), uuid.uuid4()
    first_code, linked_code = await portal.issue(first), await portal.issue(linked)
    case = case_of(first, linked, revision=3, state=CaseState.ASSIGNED, at=RECEIVED)
    early, late = RECEIVED + timedelta(hours=1), RECEIVED + timedelta(hours=5)
    replies = [reply(case.case_id, "已转调查。", late), reply(case.case_id, "已受理。", early)]

    await portal.follow_ups.keep_replies(replies)
    await portal.follow_ups.keep_replies(replies[:1])  # redelivered
    await portal.follow_ups.follow_cases([case])

    first_view = await portal.follow_ups.view(await portal.known(first_code))
    linked_view = await portal.follow_ups.view(await portal.known(linked_code))
    assert [(r.at, r.text) for r in first_view.replies] == [
        (early, "已受理。"),
        (late, "已转调查。"),
    ]
    assert first_view.updated_at == late
    assert (linked_view.status, linked_view.replies) == ("assigned", [])


async def test_cases_without_a_reporter_are_not_kept(portal: Portal) -> None:
    complaint = uuid.uuid4()
    visit = case_of(complaint, revision=1, state=CaseState.OPENED, at=RECEIVED).model_copy(
        update={"kind": CaseKind.REP_VISIT, "category": None}
    )

    await portal.follow_ups.follow_cases([visit])

    assert await portal.store.cases.get(visit.case_id) is None


async def test_what_a_reporter_adds_is_published_naming_their_complaint(portal: Portal) -> None:
    complaint = uuid.uuid4()
    known = await portal.known(await portal.issue(complaint))

    await portal.follow_ups.add_information(known, "补充：另有证人。", now=RECEIVED)

    ((topic, key, addition),) = portal.kafka.sent
    assert (topic, key) == (topics.REPORTER_ADDITIONS, complaint.bytes)
    assert isinstance(addition, ReporterAddition)
    assert (addition.complaint_event_id, addition.text) == (complaint, "补充：另有证人。")


async def test_nothing_is_added_while_kafka_is_unreachable(portal: Portal) -> None:
    known = await portal.known(await portal.issue(uuid.uuid4()))
    portal.kafka.down = True

    with pytest.raises(KafkaUnreachableError):
        await portal.follow_ups.add_information(known, "补充。", now=RECEIVED)

    assert portal.kafka.sent == []


# --- wrong codes ---------------------------------------------------------------------------


def limit(store: PortalStore) -> WrongCodeLimit:
    return WrongCodeLimit(store, address_key=b"k" * 32, allowed=2, window=timedelta(minutes=15))


async def test_wrong_codes_count_within_the_window_and_are_forgotten_after_it() -> None:
    store = PortalStore(MemoryDocuments())
    wrong = limit(store)
    key = wrong.key("203.0.113.9", new_follow_up_code())

    assert await wrong.still_allowed_after(key, now=RECEIVED)
    assert await wrong.still_allowed_after(key, now=RECEIVED + timedelta(minutes=1))
    assert not await wrong.still_allowed_after(key, now=RECEIVED + timedelta(minutes=2))
    assert await wrong.exhausted(key, now=RECEIVED + timedelta(minutes=14))
    assert not await wrong.exhausted(key, now=RECEIVED + timedelta(minutes=17))

    await wrong.forget(now=RECEIVED + timedelta(minutes=16))
    assert [w.at for w in (await store.wrong_codes.find()).values()] == [
        RECEIVED + timedelta(minutes=2)
    ]


def test_a_wrong_codes_key_holds_neither_the_address_nor_the_code() -> None:
    wrong = limit(PortalStore(MemoryDocuments()))
    code = new_follow_up_code()

    key = wrong.key("203.0.113.9", code)

    assert "203.0.113.9" not in key
    assert code not in key
    assert key == wrong.key("203.0.113.9", code)
    assert key != limit(PortalStore(MemoryDocuments())).key("203.0.113.10", code)
