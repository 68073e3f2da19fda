"""Decisions in MongoDB, one document per decision, keyed by its event id (the audit trail)."""

from pymongo.asynchronous.database import AsyncDatabase

from schemas.lead import Lead
from services.common.store import Document


class DecisionRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.decisions = db["escalation_decisions"]

    async def record_lead(self, lead: Lead) -> None:
        """Keep a lead; the same event always makes the same lead, so a repeat changes nothing."""
        await self.decisions.update_one(
            {"_id": str(lead.event_id)},
            {
                "$setOnInsert": {
                    "rule_id": lead.rule_id,
                    "kind": "lead",
                    "decision": lead.model_dump(mode="json"),
                }
            },
            upsert=True,
        )
