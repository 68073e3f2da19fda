"""Conduct files and decisions in MongoDB. Every lookup is by ``_id``.

- ``escalation_files``: one document per subject (``staff:S1``, ``company:C1``,
  ``department:D1``, ``case:CASE-…``): ``{revision, file, emitted}``: the file's events, and the
  decisions published on it by key. A file is saved only over the revision it was read at.
- ``escalation_watch``: subjects whose decisions depend on the clock (open cases, cut-offs
  in force), looked at again by the periodic check.
- ``escalation_leads``: the leads raised, by event id (the audit trail of what opened a case).
"""

from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.decision import Decision
from schemas.lead import Lead
from services.common.store import Document
from services.escalation.conduct import ConductFile


@dataclass
class StoredFile:
    file: ConductFile
    emitted: dict[str, Decision] = field(default_factory=dict)
    revision: int = 0
    """0: not stored yet."""


class ConductFiles:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.files = db["escalation_files"]
        self.watch = db["escalation_watch"]
        self.leads = db["escalation_leads"]

    async def load(self, blank: ConductFile) -> StoredFile:
        """The stored file of ``blank``'s subject, or ``blank`` if there is none yet."""
        stored = await self.files.find_one({"_id": blank.key})
        if stored is None:
            return StoredFile(blank)
        return StoredFile(
            file=ConductFile.model_validate(stored["file"]),
            emitted={
                key: Decision.model_validate(decision)
                for key, decision in stored.get("emitted", {}).items()
            },
            revision=stored["revision"],
        )

    async def save(self, stored: StoredFile) -> bool:
        """Save over the revision it was loaded at; False if another change came first."""
        document = {
            "revision": stored.revision + 1,
            "file": stored.file.model_dump(mode="json"),
            "emitted": {
                key: decision.model_dump(mode="json") for key, decision in stored.emitted.items()
            },
        }
        if stored.revision == 0:
            try:
                await self.files.insert_one({"_id": stored.file.key, **document})
            except DuplicateKeyError:
                return False
            return True
        result = await self.files.update_one(
            {"_id": stored.file.key, "revision": stored.revision}, {"$set": document}
        )
        return result.matched_count == 1

    async def set_watched(self, file: ConductFile, watched: bool) -> None:
        if watched:
            await self.watch.update_one(
                {"_id": file.key},
                {"$set": {"subject_kind": str(file.subject_kind), "subject_id": file.subject_id}},
                upsert=True,
            )
        else:
            await self.watch.delete_one({"_id": file.key})

    async def watched(self) -> list[Document]:
        return [document async for document in self.watch.find({})]

    async def record_lead(self, lead: Lead) -> None:
        """Keep a lead; the same event always makes the same lead, so a repeat changes nothing."""
        await self.leads.update_one(
            {"_id": str(lead.event_id)},
            {"$setOnInsert": {"rule_id": lead.rule_id, "lead": lead.model_dump(mode="json")}},
            upsert=True,
        )
