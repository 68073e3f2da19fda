"""The store, done once: what every service keeps, as typed records and versioned documents.

Two implementations keep the same promises (``tests/contract/test_documents.py`` runs one suite
on both): ``MongoDocuments`` over PyMongo's async client, for MongoDB in production and FerretDB
in local runs and tests, and ``MemoryDocuments``, an in-process twin for fast tests.

- ``Records``: documents under an id, with a few declared query fields. ``insert`` keeps the
  first document stored under an id and says whether it was this one (an idempotent mark);
  ``put`` replaces (the last writer wins); ``find`` selects on query fields by equality.
- ``VersionedRecords``: documents changed only over the revision they were read at. ``save``
  stores revision n + 1 only if nobody stored it since revision n was read; ``update`` reads,
  applies a change and saves, again on a conflict, so a service reads load → domain → save.

Only operations that are atomic on FerretDB 1.24 and MongoDB alike decide anything here: an
insert of a new ``_id`` (refused when it exists), and writes by ``_id`` whose result does not
depend on another writer's. FerretDB 1.24 reads the matching document and writes it back whole
for every update, so a conditional update (``{_id, revision: r}``) or an ``$inc`` is no guard
there: two writers both "succeed" and one change is lost (measured on its PostgreSQL backend:
8 writers made 75 successful updates over 41 revisions; 200 concurrent ``$inc`` ended at 108).
"""

import asyncio
import functools
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel
from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.store import BULK_CHUNK, Document, retry_transient

M = TypeVar("M", bound=BaseModel)
FieldValue = str | int | bool | datetime | None
"""What a query field holds: values FerretDB compares in its backend, not in its process."""
Change = Callable[["Versioned[M]"], Awaitable[M | None]]

UPDATE_ATTEMPTS = 20
"""Conflicts in a row before ``update`` gives up; the caller's message is then redelivered."""

KNOWN_REVISIONS = 4096
"""Keys of one collection whose latest known revision a process keeps (MongoVersionedRecords)."""

INSERT_CHUNK = 500
"""Documents per bulk insert: one round trip, one statement to FerretDB's backend."""

_DUPLICATE_KEY = 11000


class StoreBusyError(RuntimeError):
    """Other writers kept changing a document; the caller's work is retried later."""


@dataclass(frozen=True)
class Versioned(Generic[M]):
    """A document as read, with the revision it was read at (0: none stored yet)."""

    key: str
    revision: int
    value: M | None


def field_value(value: object) -> FieldValue:
    """A model's attribute as a query field holds it: enums by value, dates and ids as text."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, UUID | date) and not isinstance(value, datetime):
        return str(value)
    if value is None or isinstance(value, str | int | bool | datetime):
        return value
    raise TypeError(f"a query field holds text, a number, a boolean or a moment, not {value!r}")


@dataclass(frozen=True)
class Codec(Generic[M]):
    """How a model is stored: ``{<query fields>, value}``, the value as the contracts' JSON
    (decimals, ids and enums as text), the query fields beside it in their own types."""

    model: type[M]
    fields: tuple[str, ...]

    def encode(self, value: M) -> Document:
        encoded = value.model_dump(mode="json")
        # PostgreSQL's jsonb, under FerretDB, cannot hold U+0000 in a string: refused here on
        # every store alike (the contracts refuse it at the boundary).
        if "\\u0000" in json.dumps(encoded):
            raise ValueError(f"a {self.model.__name__} holds a NUL character (U+0000)")
        indexed = {name: field_value(getattr(value, name)) for name in self.fields}
        return {**indexed, "value": encoded}

    def decode(self, document: Document) -> M:
        return self.model.model_validate(document["value"])

    def query(self, equal: Mapping[str, object]) -> Document:
        unknown = set(equal) - set(self.fields)
        if unknown:
            raise ValueError(f"not query fields of {self.model.__name__}: {sorted(unknown)}")
        return {name: field_value(wanted) for name, wanted in equal.items()}


class Records(Protocol[M]):
    async def insert(self, record_id: str, value: M) -> bool:
        """Store ``value`` unless a record has this id; True if this call stored it."""

    async def insert_many(self, values: Mapping[str, M]) -> set[str]:
        """``insert`` for each; the ids this call stored."""

    async def put(self, record_id: str, value: M) -> None:
        """Store ``value`` under its id, replacing what was there."""

    async def put_many(self, values: Mapping[str, M]) -> None: ...

    async def delete(self, record_id: str) -> None: ...

    async def get(self, record_id: str) -> M | None: ...

    async def get_many(self, record_ids: Iterable[str]) -> dict[str, M]: ...

    async def find(self, **equal: object) -> dict[str, M]:
        """The records whose query fields equal these values (all records without any)."""


class VersionedRecords(Protocol[M]):
    async def load(self, key: str) -> Versioned[M]: ...

    async def load_many(self, keys: Iterable[str]) -> dict[str, Versioned[M]]: ...

    async def save(self, key: str, value: M, *, over: int) -> bool:
        """Store ``value`` as revision ``over`` + 1, where ``over`` is the revision it was
        computed from; False if another writer saved a revision since."""

    async def create_many(self, values: Mapping[str, M]) -> set[str]:
        """Store each value as the first revision of its key, in bulk; the keys that had none
        (the others are left as they are)."""

    async def update(self, key: str, change: Change[M]) -> Versioned[M]:
        """Load, ``change`` (None: no change), save; again on a conflict. The latest value."""

    async def find(self, **equal: object) -> dict[str, Versioned[M]]:
        """Documents whose query fields equal these values, each at its latest revision."""


class Documents(Protocol):
    """Where a service's records live: a database, or this process's memory."""

    def records(self, name: str, model: type[M], *, fields: tuple[str, ...] = ()) -> Records[M]:
        """The records called ``name``, holding ``model``s queried on ``fields``."""

    def versioned(
        self, name: str, model: type[M], *, fields: tuple[str, ...] = ()
    ) -> VersionedRecords[M]: ...

    async def prepare(self) -> None:
        """Create what the declared queries need (an index per query field)."""


async def update_versioned(
    records: VersionedRecords[M], key: str, change: Change[M]
) -> Versioned[M]:
    for _ in range(UPDATE_ATTEMPTS):
        current = await records.load(key)
        changed = await change(current)
        if changed is None:
            return current
        if await records.save(key, changed, over=current.revision):
            return Versioned(key, current.revision + 1, changed)
    raise StoreBusyError(f"{key} kept changing")


# --- MongoDB and FerretDB ----------------------------------------------------------------------


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> set[str]:
    """Insert in bulk, leaving documents whose id exists; the ids inserted."""

    async def insert(batch: list[Document]) -> set[str]:
        try:
            await collection.insert_many(batch, ordered=False)
        except BulkWriteError as error:
            problems: list[Document] = error.details["writeErrors"]
            if any(problem["code"] != _DUPLICATE_KEY for problem in problems):
                raise
            return {batch[problem["index"]]["_id"] for problem in problems}
        return set()

    inserted: set[str] = set()
    for batch in _chunks(documents, INSERT_CHUNK):
        refused = await retry_transient(functools.partial(insert, batch))
        inserted |= {document["_id"] for document in batch} - refused
    return inserted


class MongoRecords(Generic[M]):
    """Records as documents ``{_id, <query fields>, value}``.

    Lookups filter by equality alone: FerretDB 1.24 pushes nothing else down to its backend
    (no ``$in``, ranges or sorts), and reads the whole collection for what it does not."""

    def __init__(self, collection: AsyncCollection[Document], codec: Codec[M]) -> None:
        self.collection = collection
        self.codec = codec

    def document(self, record_id: str, value: M) -> Document:
        return {"_id": record_id, **self.codec.encode(value)}

    async def insert(self, record_id: str, value: M) -> bool:
        document = self.document(record_id, value)
        try:
            await retry_transient(lambda: self.collection.insert_one(document))
        except DuplicateKeyError:
            return False
        return True

    async def insert_many(self, values: Mapping[str, M]) -> set[str]:
        documents = [self.document(record_id, value) for record_id, value in values.items()]
        return await _insert_new(self.collection, documents)

    async def put(self, record_id: str, value: M) -> None:
        await self.replace(self.document(record_id, value))

    async def replace(self, document: Document) -> None:
        """Replace or insert ``document``, whoever else writes it meanwhile."""
        replace = self.collection.replace_one
        try:
            await retry_transient(lambda: replace({"_id": document["_id"]}, document, upsert=True))
        except DuplicateKeyError:
            # Two writers upserting a new document at once: the store refuses one (FerretDB
            # always, MongoDB at times). It exists now, so a plain replace does.
            await retry_transient(lambda: replace({"_id": document["_id"]}, document))

    async def put_many(self, values: Mapping[str, M]) -> None:
        documents = [self.document(record_id, value) for record_id, value in values.items()]
        for batch in _chunks(documents, BULK_CHUNK):  # see BULK_CHUNK: FerretDB's pool
            writes = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch]
            try:
                await retry_transient(
                    functools.partial(self.collection.bulk_write, writes, ordered=False)
                )
            except BulkWriteError as error:
                problems: list[Document] = error.details["writeErrors"]
                if any(problem["code"] != _DUPLICATE_KEY for problem in problems):
                    raise
                for problem in problems:  # upserts that met another writer's (see replace)
                    await self.replace(batch[problem["index"]])

    async def delete(self, record_id: str) -> None:
        await retry_transient(lambda: self.collection.delete_one({"_id": record_id}))

    async def get(self, record_id: str) -> M | None:
        found = await self._by_id(record_id)
        return None if found is None else self.codec.decode(found)

    async def get_many(self, record_ids: Iterable[str]) -> dict[str, M]:
        # One query per id, side by side: ``{_id: {$in: …}}`` would read the whole collection.
        wanted = sorted(set(record_ids))
        found = await asyncio.gather(*(self._by_id(record_id) for record_id in wanted))
        return {document["_id"]: self.codec.decode(document) for document in found if document}

    async def _by_id(self, record_id: str) -> Document | None:
        return await retry_transient(lambda: self.collection.find_one({"_id": record_id}))

    async def find(self, **equal: object) -> dict[str, M]:
        query = self.codec.query(equal)
        documents = await retry_transient(lambda: self.collection.find(query).to_list())
        return {document["_id"]: self.codec.decode(document) for document in documents}


class MongoVersionedRecords(Generic[M]):
    """Versioned documents in two collections:

    - ``<name>_revisions``: ``{_id: "<key>@<n>", value}`` for each revision n. Whoever inserts
      revision n + 1 first has made the change; the store refuses the second insert
      atomically, and that writer reads again. Once a later revision is saved, an earlier one
      keeps only its ``_id`` (the guard), so a document that grows costs its size, not the
      square of it.
    - ``<name>``: ``{_id: key, revision, <query fields>, value}`` at a recent revision, where
      a reader starts. It is written after the revision's insert, so it may lag (a writer
      stopped in between) or step back (a slower writer wrote its older copy last): a reader
      walks the revisions after it.
    """

    def __init__(self, db: AsyncDatabase[Document], name: str, codec: Codec[M]) -> None:
        self.heads = MongoRecords(db[name], codec)
        self.revisions = db[f"{name}_revisions"]
        self.codec = codec
        self.known: OrderedDict[str, tuple[int, Document]] = OrderedDict()
        """The latest revision this process read or saved of recent keys, with its value: a
        revision never changes, so a load starts there and reads only what came after (one
        read, not two, for a key read or written lately)."""

    async def load(self, key: str) -> Versioned[M]:
        known = self.known.get(key)
        if known is None:
            head = await self.heads._by_id(key)
            revision, latest = (0, None) if head is None else (int(head["revision"]), head)
        else:
            revision, latest = known
        while (newer := await self._revision(key, revision + 1)) is not None:
            revision += 1
            if "value" in newer:  # the latest revision keeps its value
                latest = newer
        if latest is None:
            return Versioned(key, 0, None)
        self._remember(key, revision, latest)
        return Versioned(key, revision, self.codec.decode(latest))

    def _remember(self, key: str, revision: int, document: Document) -> None:
        known = self.known.get(key)
        if known is None or known[0] < revision:
            self.known[key] = (revision, {"value": document["value"]})
        self.known.move_to_end(key)
        if len(self.known) > KNOWN_REVISIONS:
            self.known.popitem(last=False)

    async def _revision(self, key: str, revision: int) -> Document | None:
        return await retry_transient(lambda: self.revisions.find_one({"_id": f"{key}@{revision}"}))

    async def load_many(self, keys: Iterable[str]) -> dict[str, Versioned[M]]:
        wanted = sorted(set(keys))
        loaded = await asyncio.gather(*(self.load(key) for key in wanted))
        return dict(zip(wanted, loaded, strict=True))

    async def save(self, key: str, value: M, *, over: int) -> bool:
        encoded = self.codec.encode(value)
        guard = {"_id": f"{key}@{over + 1}", "value": encoded["value"]}
        try:
            await retry_transient(lambda: self.revisions.insert_one(guard))
        except DuplicateKeyError:
            return False
        self._remember(key, over + 1, encoded)
        await self.heads.replace({"_id": key, "revision": over + 1, **encoded})
        if over > 0:
            await retry_transient(
                lambda: self.revisions.update_one(
                    {"_id": f"{key}@{over}"}, {"$unset": {"value": ""}}
                )
            )
        return True

    async def create_many(self, values: Mapping[str, M]) -> set[str]:
        # The same two writes as ``save`` over 0, each a bulk insert: the guards decide.
        encoded = {key: self.codec.encode(value) for key, value in values.items()}
        guards = [{"_id": f"{key}@1", "value": doc["value"]} for key, doc in encoded.items()]
        created = {guard.rsplit("@", 1)[0] for guard in await _insert_new(self.revisions, guards)}
        heads = [{"_id": key, "revision": 1, **encoded[key]} for key in created]
        await _insert_new(self.heads.collection, heads)  # a head there is a later revision's
        return created

    async def update(self, key: str, change: Change[M]) -> Versioned[M]:
        return await update_versioned(self, key, change)

    async def find(self, **equal: object) -> dict[str, Versioned[M]]:
        heads = await self.heads.find(**equal)
        return await self.load_many(heads)


class MongoDocuments:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self._query_fields: dict[str, tuple[str, ...]] = {}

    def records(self, name: str, model: type[M], *, fields: tuple[str, ...] = ()) -> Records[M]:
        self._query_fields[name] = fields
        return MongoRecords(self.db[name], Codec(model, fields))

    def versioned(
        self, name: str, model: type[M], *, fields: tuple[str, ...] = ()
    ) -> VersionedRecords[M]:
        self._query_fields[name] = fields
        return MongoVersionedRecords(self.db, name, Codec(model, fields))

    async def prepare(self) -> None:
        # MongoDB serves equality on an indexed field from the index; FerretDB on PostgreSQL
        # only with the GIN index the local runtime adds beside each one it creates.
        for name, fields in self._query_fields.items():
            for field in fields:
                index = functools.partial(self.db[name].create_index, [(field, ASCENDING)])
                await retry_transient(index)


# --- In memory ---------------------------------------------------------------------------------


class MemoryRecords(Generic[M]):
    """Records in a dict, kept as the store keeps them: a value the store could not hold
    fails here too. Every operation lets other tasks run first, so concurrent writers
    interleave as they would against a server."""

    def __init__(self, codec: Codec[M]) -> None:
        self.codec = codec
        self.documents: dict[str, Document] = {}

    def document(self, value: M) -> Document:
        # Through JSON text: a copy, and what the real store would refuse (NaN) is refused.
        return dict(json.loads(json.dumps(self.codec.encode(value), allow_nan=False, default=str)))

    async def insert(self, record_id: str, value: M) -> bool:
        document = self.document(value)
        await asyncio.sleep(0)
        if record_id in self.documents:
            return False
        self.documents[record_id] = document
        return True

    async def insert_many(self, values: Mapping[str, M]) -> set[str]:
        return {key for key, value in values.items() if await self.insert(key, value)}

    async def put(self, record_id: str, value: M) -> None:
        document = self.document(value)
        await asyncio.sleep(0)
        self.documents[record_id] = document

    async def put_many(self, values: Mapping[str, M]) -> None:
        for record_id, value in values.items():
            await self.put(record_id, value)

    async def delete(self, record_id: str) -> None:
        await asyncio.sleep(0)
        self.documents.pop(record_id, None)

    async def get(self, record_id: str) -> M | None:
        await asyncio.sleep(0)
        document = self.documents.get(record_id)
        return None if document is None else self.codec.decode(document)

    async def get_many(self, record_ids: Iterable[str]) -> dict[str, M]:
        await asyncio.sleep(0)
        return {
            record_id: self.codec.decode(self.documents[record_id])
            for record_id in set(record_ids)
            if record_id in self.documents
        }

    async def find(self, **equal: object) -> dict[str, M]:
        # Compared as the store compares them: moments in JSON, as they are kept here.
        query = json.loads(json.dumps(self.codec.query(equal), default=str))
        await asyncio.sleep(0)
        return {
            record_id: self.codec.decode(document)
            for record_id, document in self.documents.items()
            if all(document.get(field) == wanted for field, wanted in query.items())
        }


class MemoryVersionedRecords(Generic[M]):
    def __init__(self, codec: Codec[M]) -> None:
        self.heads = MemoryRecords(codec)
        self.revisions: dict[str, int] = {}

    async def load(self, key: str) -> Versioned[M]:
        value = await self.heads.get(key)
        return Versioned(key, self.revisions.get(key, 0), value)

    async def load_many(self, keys: Iterable[str]) -> dict[str, Versioned[M]]:
        return {key: await self.load(key) for key in sorted(set(keys))}

    async def save(self, key: str, value: M, *, over: int) -> bool:
        document = self.heads.document(value)
        await asyncio.sleep(0)
        if self.revisions.get(key, 0) != over:
            return False
        self.revisions[key] = over + 1
        self.heads.documents[key] = document
        return True

    async def create_many(self, values: Mapping[str, M]) -> set[str]:
        return {key for key, value in values.items() if await self.save(key, value, over=0)}

    async def update(self, key: str, change: Change[M]) -> Versioned[M]:
        return await update_versioned(self, key, change)

    async def find(self, **equal: object) -> dict[str, Versioned[M]]:
        return await self.load_many(await self.heads.find(**equal))


class MemoryDocuments:
    """A service's records in this process's memory, for tests of application layers that
    then run in milliseconds. Passes the same contract test as the store."""

    def __init__(self) -> None:
        self._made: dict[str, Any] = {}

    def records(self, name: str, model: type[M], *, fields: tuple[str, ...] = ()) -> Records[M]:
        made: MemoryRecords[M] = self._made.setdefault(name, MemoryRecords(Codec(model, fields)))
        return made

    def versioned(
        self, name: str, model: type[M], *, fields: tuple[str, ...] = ()
    ) -> VersionedRecords[M]:
        made: MemoryVersionedRecords[M] = self._made.setdefault(
            name, MemoryVersionedRecords(Codec(model, fields))
        )
        return made

    async def prepare(self) -> None:
        return None
