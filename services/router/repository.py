"""Cases in MongoDB, one document per case, keyed by case id."""

from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from schemas.case import CaseRouted
from services.common.store import Document


@dataclass(frozen=True)
class OpenedCase:
    case: CaseRouted
    created: bool
    """False when the case already existed: a redelivered or replayed event."""


class CaseRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.cases = db["router_cases"]

    async def ensure_indexes(self) -> None:
        await self.cases.create_index("source_event_id", unique=True)

    async def open(self, case: CaseRouted) -> OpenedCase:
        """Store a newly routed case; if it exists, keep it as first routed and return that."""
        result = await self.cases.update_one(
            {"_id": case.case_id},
            {
                "$setOnInsert": {
                    "source_event_id": str(case.source_event_id),
                    "state": "assigned",
                    "routed": case.model_dump(mode="json"),
                    "history": [
                        {
                            "at": datetime.now(UTC),
                            "by": "router",
                            "change": "assigned",
                            "to": case.responsible_department.code,
                        }
                    ],
                }
            },
            upsert=True,
        )
        if result.upserted_id is not None:
            return OpenedCase(case=case, created=True)
        stored = await self.cases.find_one({"_id": case.case_id}, {"routed": 1})
        if stored is None:
            raise LookupError(f"case {case.case_id} vanished while being opened")
        return OpenedCase(case=CaseRouted.model_validate(stored["routed"]), created=False)
