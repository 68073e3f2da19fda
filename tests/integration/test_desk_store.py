"""The desk on the real store (FerretDB here, MongoDB in production): what the in-memory tests
cannot show — text kept byte for byte through the store, and two desk instances sharing one
database: the list of one takes in what the other stored, and wrong passwords count together."""

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from pymongo.asynchronous.database import AsyncDatabase

from schemas.case_action import CaseActionKind, CaseActionReceived, CaseActionSubmission
from services.common.documents import MongoDocuments
from services.common.roles import Role
from services.common.store import Document
from services.desk import signin
from services.desk.readmodel import CaseIndex, ReadModel
from services.desk.signin import Accounts, Limits, SignIn
from services.desk.store import DeskStore
from services.router.domain import take_action
from tests.desk import complaint_and_case
from tests.factories import ROUTING

pytestmark = pytest.mark.infra

NOW = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
RARE_TEXT = "𠀀𠀁 㐀㐁 🧧👨‍👩‍👧 红包\r\n第二段\u3000全角空格"


class Instance:
    """One desk process's store and read model, on the shared database."""

    def __init__(self, db: AsyncDatabase[Document], clock: "Clock") -> None:
        self.documents = MongoDocuments(db)
        self.store = DeskStore(self.documents)
        self.index = CaseIndex(ROUTING.catalogue)
        self.read_model = ReadModel(self.store, self.index, clock=clock)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def test_a_complaints_words_come_back_from_the_store_byte_for_byte(
    store: AsyncDatabase[Document],
) -> None:
    desk = Instance(store, Clock())
    await desk.documents.prepare()
    complaint, case = complaint_and_case(
        "STORE-TEXT", received_at=NOW - timedelta(days=1), description=RARE_TEXT
    )
    await desk.read_model.complaints([complaint])
    await desk.read_model.cases([case])

    kept = await desk.store.complaints.get(str(complaint.event_id))
    assert kept is not None
    assert kept.description.encode("utf-8") == RARE_TEXT.strip().encode("utf-8")


async def test_a_replayed_older_revision_never_replaces_a_newer_one(
    store: AsyncDatabase[Document],
) -> None:
    desk = Instance(store, Clock())
    await desk.documents.prepare()
    _, case = complaint_and_case("STORE-REV", received_at=NOW - timedelta(days=1))
    action = CaseActionReceived.accept(
        CaseActionSubmission(
            source_system="desk",
            source_ref="REV-1",
            occurred_at=NOW,
            case_id=case.case_id,
            action=CaseActionKind.START_INVESTIGATION,
            actor_staff_id="S0102",
        ),
        received_at=NOW,
    )
    started = take_action(case, action, ROUTING, now=NOW)

    await desk.read_model.cases([started])
    await desk.read_model.cases([case, case])  # a replay, redelivered
    loaded = await desk.store.cases.load(case.case_id)
    assert loaded.value is not None
    assert loaded.value.revision == started.revision
    assert desk.index.rows[case.case_id].revision == started.revision

    fresh = Instance(store, Clock())
    await fresh.read_model.load_index()
    assert fresh.index.rows[case.case_id].state == started.state


async def test_one_instances_list_takes_in_what_another_stored(
    store: AsyncDatabase[Document],
) -> None:
    clock = Clock()
    first, second = Instance(store, clock), Instance(store, clock)
    await first.documents.prepare()
    await second.read_model.load_index()
    _, case = complaint_and_case("STORE-TWO", received_at=NOW - timedelta(days=1))

    await first.read_model.cases([case])
    assert case.case_id not in second.index.rows
    await second.read_model.refresh_index()
    assert case.case_id in second.index.rows


async def test_wrong_passwords_count_together_on_every_instance(
    store: AsyncDatabase[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signin, "HASHER", PasswordHasher(time_cost=1, memory_cost=64))
    clock = Clock()
    limits = Limits(per_account=5, per_address=20, window=timedelta(minutes=15))
    desks = []
    for _ in range(2):
        instance = Instance(store, clock)
        await instance.documents.prepare()
        accounts = Accounts(instance.store, ROUTING.catalogue)
        desks.append(SignIn(instance.store, accounts, limits=limits, directory=None, clock=clock))
    password = await desks[0].accounts.create(
        "ma", role=Role.LEADERSHIP, display_name="马", department=None, staff_id=None, now=NOW
    )

    for attempt in range(5):
        outcome = await desks[attempt % 2].attempt("ma", "wrong", f"10.0.0.{attempt}")
        assert outcome.refusal == "wrong"
    for desk in desks:
        assert (await desk.attempt("ma", password, "10.0.0.9")).refusal == "locked_out"
    clock.now += timedelta(minutes=16)
    assert (await desks[1].attempt("ma", password, "10.0.0.9")).account is not None
