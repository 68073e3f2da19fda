"""Decisions in MongoDB, one document per decision event, keyed by its event id."""

from pymongo.asynchronous.database import AsyncDatabase

from schemas.case import DeadlineSet
from services.common.store import Document


class DecisionRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.deadlines = db["escalation_deadlines"]

    async def ensure_indexes(self) -> None:
        await self.deadlines.create_index("case_id", unique=True)

    async def record_deadline(self, decision: DeadlineSet) -> DeadlineSet:
        """Keep the first deadline decided for a case; return the one that stands."""
        await self.deadlines.update_one(
            {"_id": str(decision.event_id)},
            {
                "$setOnInsert": {
                    "case_id": decision.case_id,
                    "deadline": decision.deadline,
                    "decision": decision.model_dump(mode="json"),
                }
            },
            upsert=True,
        )
        stored = await self.deadlines.find_one({"_id": str(decision.event_id)}, {"decision": 1})
        if stored is None:
            raise LookupError(f"deadline {decision.event_id} vanished while being recorded")
        return DeadlineSet.model_validate(stored["decision"])
