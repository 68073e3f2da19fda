"""Conduct files and decisions in MongoDB. Every lookup is by ``_id``.

Whenever writers may race (a handler and the periodic check, handlers of two topics about one
staff member, two instances), the winner is decided by inserting a new ``_id``, which the store
refuses atomically when it exists. A conditional update is no such guard on FerretDB 1.24: it
reads the matching document, then writes the whole document back by ``_id``, so two writers
that both matched ``{"revision": 3}`` would both "succeed" and one change would be lost.

- ``escalation_file_revisions``: ``{_id: "<subject>@<revision>", revision, file, emitted}``,
  one per revision of each file. Whoever inserts revision n + 1 first has made the change; the
  others read the file again and decide again. Once the latest copy of revision n + 1 is
  written, revision n keeps only its ``_id`` and number (its guard); the last one keeps all.
- ``escalation_files``: one document per subject (``staff:S1``, ``company:C1``,
  ``department:D1``, ``case:CASE-…``): ``{revision, file, emitted}`` at a recent revision,
  rewritten after each revision is inserted: the file's events, and the decisions published on
  it, the latest of each key (a list: keys are values, never field names, and a key may hold a
  dot). It is where a reader starts: it then looks for the revisions after it, as a writer
  may have stopped in between, or been overtaken and written an older copy last.
- ``escalation_watch``: subjects whose decisions depend on the clock (open cases, cut-offs
  in force), looked at again by the periodic check.
- ``escalation_leads``: the leads raised, by event id (the audit trail of what opened a case).

Every write may be repeated: FerretDB answers "database is locked" when writers meet.
"""

from dataclasses import dataclass, field
from functools import partial

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.decision import Decision
from schemas.lead import Lead
from services.common.store import Document, retry_transient
from services.escalation.conduct import ConductFile


@dataclass
class StoredFile:
    file: ConductFile
    emitted: dict[str, Decision] = field(default_factory=dict)
    revision: int = 0
    """0: not stored yet."""


def _revision_id(key: str, revision: int) -> str:
    return f"{key}@{revision}"


class ConductFiles:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.files = db["escalation_files"]
        self.revisions = db["escalation_file_revisions"]
        self.watch = db["escalation_watch"]
        self.leads = db["escalation_leads"]

    async def load(self, blank: ConductFile) -> StoredFile:
        """The stored file of ``blank``'s subject, or ``blank`` if there is none yet."""
        stored = await retry_transient(lambda: self.files.find_one({"_id": blank.key}))
        revision = 0 if stored is None else int(stored["revision"])
        while True:
            newer = await retry_transient(
                partial(self.revisions.find_one, {"_id": _revision_id(blank.key, revision + 1)})
            )
            if newer is None:
                break
            revision += 1
            if "file" in newer:  # not emptied: the last revision never is
                stored = newer
        if stored is None:
            return StoredFile(blank)
        if int(stored["revision"]) != revision:
            raise LookupError(f"conduct file {blank.key}: revision {revision} holds no file")
        emitted = stored.get("emitted", [])
        if isinstance(emitted, dict):  # saved before ``emitted`` became a list
            emitted = list(emitted.values())
        decisions = [Decision.model_validate(decision) for decision in emitted]
        return StoredFile(
            file=ConductFile.model_validate(stored["file"]),
            emitted={decision.key: decision for decision in decisions},
            revision=revision,
        )

    async def save(self, stored: StoredFile) -> bool:
        """Save over the revision it was loaded at; False if another change came first."""
        key, revision = stored.file.key, stored.revision + 1
        document = {
            "revision": revision,
            "file": stored.file.model_dump(mode="json"),
            "emitted": [decision.model_dump(mode="json") for decision in stored.emitted.values()],
        }
        try:
            await retry_transient(
                lambda: self.revisions.insert_one({"_id": _revision_id(key, revision), **document})
            )
        except DuplicateKeyError:
            return False
        # By _id alone: FerretDB reads a whole collection for any other filter. A writer that
        # was overtaken may put an older copy back; readers walk forward from it.
        await retry_transient(lambda: self.files.replace_one({"_id": key}, document, upsert=True))
        if revision > 1:
            # The revision before is now only the guard against a writer still at it: a
            # file grows with its events, and a full copy kept per revision would make its
            # storage grow with their square.
            await retry_transient(
                lambda: self.revisions.update_one(
                    {"_id": _revision_id(key, revision - 1)},
                    {"$unset": {"file": "", "emitted": ""}},
                )
            )
        return True

    async def set_watched(self, file: ConductFile, watched: bool) -> None:
        if watched:
            await retry_transient(
                lambda: self.watch.update_one(
                    {"_id": file.key},
                    {
                        "$set": {
                            "subject_kind": str(file.subject_kind),
                            "subject_id": file.subject_id,
                        }
                    },
                    upsert=True,
                )
            )
        else:
            await retry_transient(lambda: self.watch.delete_one({"_id": file.key}))

    async def watched(self) -> list[Document]:
        return [document async for document in self.watch.find({})]

    async def record_lead(self, lead: Lead) -> None:
        """Keep a lead; the same event always makes the same lead, so a repeat changes nothing."""
        await retry_transient(
            lambda: self.leads.update_one(
                {"_id": str(lead.event_id)},
                {"$setOnInsert": {"rule_id": lead.rule_id, "lead": lead.model_dump(mode="json")}},
                upsert=True,
            )
        )
