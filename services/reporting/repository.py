"""Report facts in MongoDB, written so that a redelivery or a replay changes nothing.

- ``reporting_counts``: event counts per (topic, partition, month), ``{offset, counts}``. A
  record adds one only if its offset is past the last one counted in that document: a
  partition is consumed in order, so every earlier offset was counted before. Counting is
  therefore exact without a transaction: one conditional single-document update.
- ``reporting_cases``: each case's latest revision (``CaseRecord``: its fact and history).
- ``reporting_decisions``: every decision escalation published, by event id.
- ``reporting_kpi``: the latest observation per metric, scope and period.
- ``reporting_training``: study sessions, by event id.
- ``reporting_confirmations``: departments' confirmations of their monthly reports.
- ``reporting_tokens`` and ``reporting_access_log``: who may read, and who read case details.
- ``reporting_sessions``: the dashboard's signed-in browsers (``access.DashboardSessions``).

Every lookup that must be fast is by ``_id`` (FerretDB pushes only those down); the scans
(cases, decisions) are over collections that grow by cases, not by events.
"""

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.decision import Decision
from schemas.kpi import KpiObservationReceived
from schemas.training import TrainingHeldReceived
from services.common.store import BULK_CHUNK, Document
from services.reporting.facts import CaseFact, CaseRecord, CountKey
from services.reporting.kpi import Observation
from services.reporting.monthly import Confirmation, MonthData

_ESCAPES = {"%": "%25", ".": "%2E", "$": "%24", "|": "%7C"}


def _escape(part: str) -> str:
    return "".join(_ESCAPES.get(character, character) for character in part)


def _unescape(part: str) -> str:
    for character, escaped in reversed(_ESCAPES.items()):
        part = part.replace(escaped, character)
    return part


def _count_field(key: CountKey) -> str:
    """A field name for a count: no dots or dollars (MongoDB field-name rules). A complaint
    against a department's head adds its id as a fourth part."""
    parts = [key.department or "", key.event_type, key.category or ""]
    if key.complaint_against_head is not None:
        parts.append(key.complaint_against_head)
    return "|".join(_escape(part) for part in parts)


def _count_key(month: str, field: str) -> CountKey:
    department, event_type, category, *against_head = map(_unescape, field.split("|"))
    return CountKey.model_validate(
        {
            "month": month,
            "department": department or None,
            "event_type": event_type,
            "category": category or None,
            "complaint_against_head": next(iter(against_head), None),
        }
    )


def count_document_id(topic: str, partition: int, month: str) -> str:
    return f"{topic}|{partition}|{month}"


def count_document(
    document_id: str, *, month: str, offset: int, counts: Mapping[CountKey, int]
) -> Document:
    """A count document as ``ReportRepository.count`` leaves it."""
    return {
        "_id": document_id,
        "month": month,
        "offset": offset,
        "counts": {_count_field(key): n for key, n in counts.items()},
    }


def case_document(record: CaseRecord) -> Document:
    return {
        "_id": record.case_id,
        **record.model_dump(mode="python", exclude={"case_id", "history"}),
        # As JSON: each entry names its source event by UUID, which BSON would need told how
        # to encode.
        "history": [entry.model_dump(mode="json") for entry in record.history],
    }


def decision_document(decision: Decision) -> Document:
    return {"_id": str(decision.event_id), "decision": decision.model_dump(mode="json")}


def observation_id(observation: KpiObservationReceived) -> str:
    return f"{observation.metric}|{observation.scope}|{observation.period}"


def observation_document(observation: KpiObservationReceived) -> Document:
    return {
        "_id": observation_id(observation),
        "occurred_at": observation.occurred_at,
        "observation": Observation(
            metric=observation.metric,
            scope=observation.scope,
            period=observation.period,
            value=observation.value,
        ).model_dump(mode="json"),
    }


def training_document(session: TrainingHeldReceived) -> Document:
    return {"_id": str(session.event_id), "session": session.model_dump(mode="json")}


COUNTS = "reporting_counts"
CASES = "reporting_cases"
DECISIONS = "reporting_decisions"
KPI = "reporting_kpi"
TRAINING = "reporting_training"


class ReportRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.counts = db[COUNTS]
        self.cases = db[CASES]
        self.decisions = db[DECISIONS]
        self.kpi = db[KPI]
        self.training = db[TRAINING]
        self.confirmations = db["reporting_confirmations"]
        self.tokens = db["reporting_tokens"]
        self.dashboard_sessions = db["reporting_sessions"]
        self.access_log = db["reporting_access_log"]
        self._counted_up_to: dict[str, int] = {}
        """Per count document, an offset it has counted up to (a lower bound: the stored one
        only grows), so that records counted before are recognised without a write."""

    # --- Writing ------------------------------------------------------------------------------

    async def count(self, key: CountKey, *, topic: str, partition: int, offset: int) -> bool:
        """Count one event once; False if this record was counted before."""
        document_id = count_document_id(topic, partition, key.month)
        known = self._counted_up_to.get(document_id)
        if known is None:
            stored = await self.counts.find_one({"_id": document_id}, {"offset": 1})
            known = -1 if stored is None else int(stored["offset"])
            self._counted_up_to[document_id] = known
        if offset <= known:
            return False  # a replay over counted records reads, and writes nothing
        update = {
            "$inc": {f"counts.{_count_field(key)}": 1},
            "$set": {"offset": offset, "month": key.month},
        }
        try:
            result = await self.counts.update_one(
                {"_id": document_id, "offset": {"$lt": offset}}, update, upsert=True
            )
        except DuplicateKeyError:
            self._counted_up_to[document_id] = offset
            return False  # the document holds this offset or a later one
        # Counted now or before: the stored offset is at least this one from here on. Not on
        # an error of the store: the record is retried and must still be counted then.
        self._counted_up_to[document_id] = offset
        return result.modified_count == 1 or result.upserted_id is not None

    async def record_case(self, record: CaseRecord) -> None:
        """Keep the latest revision of a case: an older or repeated one changes nothing."""
        # A DuplicateKeyError means a revision as new or newer is already stored.
        with contextlib.suppress(DuplicateKeyError):
            document = case_document(record)
            await self.cases.update_one(
                {"_id": document.pop("_id"), "revision": {"$lt": record.revision}},
                {"$set": document},
                upsert=True,
            )

    async def record_decision(self, decision: Decision) -> bool:
        """Keep a decision; False if it was kept before."""
        try:
            await self.decisions.insert_one(decision_document(decision))
        except DuplicateKeyError:
            return False
        return True

    async def record_observation(self, observation: KpiObservationReceived) -> None:
        """Keep the latest observation (by event time) of a metric for a scope and period."""
        document = observation_document(observation)
        with contextlib.suppress(DuplicateKeyError):
            await self.kpi.update_one(
                {"_id": document.pop("_id"), "occurred_at": {"$lt": observation.occurred_at}},
                {"$set": document},
                upsert=True,
            )

    async def record_training(self, session: TrainingHeldReceived) -> None:
        document = training_document(session)
        await self.training.update_one(
            {"_id": document.pop("_id")}, {"$setOnInsert": document}, upsert=True
        )

    async def insert_new(self, name: str, documents: Iterable[Document]) -> int:
        """Insert documents not stored yet (a rebuild's, into a new database); how many."""
        chunk = list(documents)
        for start in range(0, len(chunk), BULK_CHUNK):
            await self.db[name].insert_many(chunk[start : start + BULK_CHUNK])
        return len(chunk)

    async def confirm(self, confirmation: Confirmation) -> Confirmation:
        """Record a department's confirmation of its report; the first one stands."""
        document_id = f"{confirmation.department}|{confirmation.month}"
        await self.confirmations.update_one(
            {"_id": document_id},
            {"$setOnInsert": confirmation.model_dump(mode="python")},
            upsert=True,
        )
        stored = await self.confirmations.find_one({"_id": document_id}, {"_id": 0})
        if stored is None:
            raise LookupError(f"confirmation {document_id} vanished while being recorded")
        return Confirmation.model_validate(stored)

    # --- Reading ------------------------------------------------------------------------------

    async def month_counts(self, months: Iterable[str]) -> list[tuple[CountKey, int]]:
        wanted = set(months)
        totals: dict[CountKey, int] = {}
        async for document in self.counts.find({}, {"month": 1, "counts": 1}):
            if document["month"] not in wanted:
                continue
            for field, n in document.get("counts", {}).items():
                key = _count_key(document["month"], field)
                totals[key] = totals.get(key, 0) + n
        return sorted(totals.items(), key=lambda item: item[0].model_dump_json())

    async def all_cases(self) -> list[CaseFact]:
        """Every case's fact, without its history (the reports count, they list no changes)."""
        return [
            CaseFact.model_validate({**document, "case_id": document["_id"]})
            async for document in self.cases.find({}, {"history": 0})
        ]

    async def case(self, case_id: str) -> CaseRecord | None:
        document = await self.cases.find_one({"_id": case_id})
        if document is None:
            return None
        # Stored before reporting kept histories: the case's next revision or a rebuild
        # brings it.
        document.setdefault("history", [])
        return CaseRecord.model_validate({**document, "case_id": document["_id"]})

    async def all_decisions(self) -> list[Decision]:
        return [
            Decision.model_validate(document["decision"])
            async for document in self.decisions.find({})
        ]

    async def observations(self) -> list[Observation]:
        return [
            Observation.model_validate(document["observation"])
            async for document in self.kpi.find({})
        ]

    async def sessions(self) -> list[TrainingHeldReceived]:
        return [
            TrainingHeldReceived.model_validate(document["session"])
            async for document in self.training.find({})
        ]

    async def all_confirmations(self) -> list[Confirmation]:
        return [
            Confirmation.model_validate(document)
            async for document in self.confirmations.find({}, {"_id": 0})
        ]

    async def month_data(self, months: Iterable[str]) -> MonthData:
        return MonthData(
            counts=await self.month_counts(months),
            cases=await self.all_cases(),
            decisions=await self.all_decisions(),
            observations=await self.observations(),
            sessions=await self.sessions(),
            confirmations=await self.all_confirmations(),
        )

    # --- Access -------------------------------------------------------------------------------

    async def create_token(self, record: Document) -> None:
        await self.tokens.insert_one(record)

    async def token(self, token_id: str) -> Document | None:
        return await self.tokens.find_one({"_id": token_id})

    async def list_tokens(self) -> list[Document]:
        return [doc async for doc in self.tokens.find({}, {"secret_digest": 0}).sort("_id")]

    async def revoke_token(self, token_id: str, *, at: datetime) -> bool:
        result = await self.tokens.update_one(
            {"_id": token_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
        )
        return result.modified_count == 1

    async def create_dashboard_session(self, record: Document) -> None:
        await self.dashboard_sessions.insert_one(record)

    async def dashboard_session(self, digest: str) -> Document | None:
        return await self.dashboard_sessions.find_one({"_id": digest})

    async def delete_dashboard_session(self, digest: str) -> None:
        await self.dashboard_sessions.delete_one({"_id": digest})

    async def log_access(self, *, token_id: str, role: str, case_id: str, at: datetime) -> None:
        await self.access_log.insert_one(
            {
                "_id": str(uuid.uuid4()),
                "token_id": token_id,
                "role": role,
                "case_id": case_id,
                "at": at,
            }
        )

    async def accesses(self, case_id: str) -> list[Document]:
        return [
            document async for document in self.access_log.find({"case_id": case_id}, {"_id": 0})
        ]
