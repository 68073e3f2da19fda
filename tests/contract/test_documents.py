"""The store adapter's promises, on the real store (FerretDB here, MongoDB in production) and
on its in-memory twin: one suite, two implementations, so that tests run on the twin mean
what they say about the store."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pymongo import AsyncMongoClient

from services.common.documents import (
    Documents,
    MemoryDocuments,
    MongoDocuments,
    StoreBusyError,
    Versioned,
)
from services.common.store import Document
from tests.conftest import InfraSettings


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Note(BaseModel):
    owner: str
    colour: Colour = Colour.RED
    amount: Decimal = Decimal("0")
    at: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    done: bool = False
    text: str = ""


class Tally(BaseModel):
    """A document many writers change: each adds its own mark."""

    marks: list[str] = []


@pytest.fixture(params=["memory", pytest.param("store", marks=pytest.mark.infra)])
async def documents(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Documents]:
    if request.param == "memory":
        yield MemoryDocuments()
        return
    infra: InfraSettings = request.getfixturevalue("infra")
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    db = client[f"test_{uuid.uuid4().hex[:12]}"]
    yield MongoDocuments(db)
    await client.drop_database(db.name)
    await client.close()


async def test_a_record_is_inserted_once_and_the_first_one_stays(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    assert await notes.insert("n1", Note(owner="a")) is True
    assert await notes.insert("n1", Note(owner="b")) is False
    assert await notes.get("n1") == Note(owner="a")
    assert await notes.get("n2") is None


async def test_concurrent_inserts_of_one_id_store_one(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    won = await asyncio.gather(*(notes.insert("same", Note(owner=str(i))) for i in range(40)))
    assert sum(won) == 1
    stored = await notes.get("same")
    assert stored is not None
    assert stored.owner == str(won.index(True))


async def test_insert_many_says_which_ids_were_new(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    await notes.insert("old", Note(owner="first"))
    new = await notes.insert_many({"old": Note(owner="second"), "new": Note(owner="x")})
    assert new == {"new"}
    assert await notes.get_many(["old", "new", "missing"]) == {
        "old": Note(owner="first"),
        "new": Note(owner="x"),
    }


async def test_a_large_batch_is_inserted_whole(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    await notes.insert("n7", Note(owner="before"))
    batch = {f"n{i}": Note(owner=str(i)) for i in range(1200)}
    assert await notes.insert_many(batch) == set(batch) - {"n7"}
    assert len(await notes.find()) == 1200


async def test_many_puts_at_once_are_all_written(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    await notes.put_many({f"n{i}": Note(owner=str(i)) for i in range(120)})
    await notes.put_many({f"n{i}": Note(owner=str(-i)) for i in range(0, 120, 2)})
    stored = await notes.find()
    assert len(stored) == 120
    assert all(
        note.owner == str(-int(key[1:]) if int(key[1:]) % 2 == 0 else int(key[1:]))
        for key, note in stored.items()
    )


async def test_put_replaces_and_delete_removes(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    await notes.put("n", Note(owner="a"))
    await notes.put("n", Note(owner="b", done=True))
    assert await notes.get("n") == Note(owner="b", done=True)
    await notes.put_many({"n": Note(owner="c"), "m": Note(owner="d")})
    assert await notes.get_many(["n", "m"]) == {"n": Note(owner="c"), "m": Note(owner="d")}
    await notes.delete("n")
    await notes.delete("never there")
    assert await notes.get("n") is None


async def test_find_selects_on_query_fields_by_equality(documents: Documents) -> None:
    notes = documents.records("notes", Note, fields=("owner", "colour", "done", "at"))
    await documents.prepare()
    moment = datetime(2026, 3, 1, 8, tzinfo=UTC)
    await notes.insert_many(
        {
            "a": Note(owner="s1", colour=Colour.BLUE, at=moment),
            "b": Note(owner="s1", done=True),
            "c": Note(owner="s2", colour=Colour.BLUE),
        }
    )
    assert set(await notes.find(owner="s1")) == {"a", "b"}
    assert set(await notes.find(owner="s1", done=False)) == {"a"}
    assert set(await notes.find(colour=Colour.BLUE)) == {"a", "c"}
    assert set(await notes.find(at=moment)) == {"a"}
    assert set(await notes.find()) == {"a", "b", "c"}
    with pytest.raises(ValueError, match="text"):
        await notes.find(text="x")


async def test_values_come_back_as_they_were_stored(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    note = Note(
        owner="𠀀㐀😀 行风办",
        amount=Decimal("30000.01"),
        at=datetime(2026, 12, 3, 10, 7, 23, 123000, tzinfo=UTC),
        text="=HYPERLINK(\t)",
    )
    await notes.put("n", note)
    assert await notes.get("n") == note


async def test_a_nul_character_is_refused_by_every_store(documents: Documents) -> None:
    notes = documents.records("notes", Note)
    with pytest.raises(ValueError, match="NUL"):
        await notes.insert("n", Note(owner="a", text="before\x00after"))
    assert await notes.get("n") is None


async def test_a_versioned_document_starts_at_revision_zero(documents: Documents) -> None:
    tallies = documents.versioned("tallies", Tally)
    assert await tallies.load("t") == Versioned("t", 0, None)


async def test_a_save_over_a_stale_revision_is_refused(documents: Documents) -> None:
    tallies = documents.versioned("tallies", Tally)
    assert await tallies.save("t", Tally(marks=["a"]), over=0) is True
    assert await tallies.save("t", Tally(marks=["b"]), over=0) is False
    assert await tallies.save("t", Tally(marks=["a", "c"]), over=1) is True
    assert await tallies.load("t") == Versioned("t", 2, Tally(marks=["a", "c"]))


async def test_concurrent_writers_lose_no_update(documents: Documents) -> None:
    tallies = documents.versioned("tallies", Tally)

    async def add(mark: str) -> None:
        async def change(current: Versioned[Tally]) -> Tally:
            marks = [] if current.value is None else current.value.marks
            return Tally(marks=[*marks, mark])

        await tallies.update("shared", change)

    writers = [f"w{i}" for i in range(12)]
    await asyncio.gather(*(add(mark) for mark in writers))
    final = await tallies.load("shared")
    assert final.value is not None
    assert sorted(final.value.marks) == sorted(writers)
    assert final.revision == len(writers)


async def test_what_another_instance_saved_is_loaded_and_saved_over(documents: Documents) -> None:
    # Two instances of a service on one store (one process each): each reads the other's.
    other = MongoDocuments(documents.db) if isinstance(documents, MongoDocuments) else documents
    mine, theirs = documents.versioned("tallies", Tally), other.versioned("tallies", Tally)
    assert await mine.save("t", Tally(marks=["a"]), over=0)
    assert await mine.load("t") == Versioned("t", 1, Tally(marks=["a"]))
    for n, mark in enumerate(["b", "c", "d"], start=1):
        assert await theirs.save("t", Tally(marks=["a", mark]), over=n)
    assert await mine.load("t") == Versioned("t", 4, Tally(marks=["a", "d"]))
    assert await mine.save("t", Tally(marks=["e"]), over=3) is False
    assert await mine.save("t", Tally(marks=["e"]), over=4) is True
    assert await theirs.load("t") == Versioned("t", 5, Tally(marks=["e"]))


async def test_an_update_that_changes_nothing_saves_nothing(documents: Documents) -> None:
    tallies = documents.versioned("tallies", Tally)
    await tallies.save("t", Tally(marks=["a"]), over=0)

    async def unchanged(_: Versioned[Tally]) -> None:
        return None

    assert await tallies.update("t", unchanged) == Versioned("t", 1, Tally(marks=["a"]))
    assert (await tallies.load("t")).revision == 1


async def test_an_update_gives_up_when_the_document_keeps_changing(documents: Documents) -> None:
    tallies = documents.versioned("tallies", Tally)

    async def overtaken(current: Versioned[Tally]) -> Tally:
        # Another writer saves the revision this change was about to save.
        await tallies.save("t", Tally(marks=["other"]), over=current.revision)
        return Tally(marks=["mine"])

    with pytest.raises(StoreBusyError):
        await tallies.update("t", overtaken)


async def test_many_new_documents_are_created_at_their_first_revision(
    documents: Documents,
) -> None:
    notes = documents.versioned("vnotes", Note, fields=("owner",))
    await documents.prepare()
    await notes.save("taken", Note(owner="s0", text="first"), over=0)
    wanted = {f"k{n}": Note(owner=f"s{n % 3}", text=f"t{n}") for n in range(1200)}
    created = await notes.create_many({**wanted, "taken": Note(owner="s0", text="second")})
    assert created == set(wanted)
    assert await notes.load("taken") == Versioned("taken", 1, Note(owner="s0", text="first"))
    assert await notes.load("k7") == Versioned("k7", 1, wanted["k7"])
    assert len(await notes.find(owner="s1")) == 400
    assert await notes.save("k7", Note(owner="s1", text="later"), over=1) is True
    assert await notes.save("k8", Note(owner="s2", text="stale"), over=0) is False


async def test_versioned_documents_are_found_by_query_fields(documents: Documents) -> None:
    notes = documents.versioned("vnotes", Note, fields=("owner",))
    await documents.prepare()
    await notes.save("a", Note(owner="s1"), over=0)
    await notes.save("a", Note(owner="s1", text="later"), over=1)
    await notes.save("b", Note(owner="s2"), over=0)
    found = await notes.find(owner="s1")
    assert found == {"a": Versioned("a", 2, Note(owner="s1", text="later"))}
    assert set(await notes.load_many(["a", "b", "c"])) == {"a", "b", "c"}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
async def test_any_text_is_a_key_and_a_value(documents: Documents, text: str) -> None:
    notes = documents.versioned("keys", Note)
    current = await notes.load(text)
    await notes.save(text, Note(owner=text, text=text), over=current.revision)
    loaded = await notes.load(text)
    assert loaded.revision == current.revision + 1
    assert loaded.value == Note(owner=text, text=text)
