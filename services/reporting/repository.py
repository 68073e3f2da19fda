"""Report facts in MongoDB: one document per case, written idempotently from the topics."""

import contextlib

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas.case import CaseUpdated
from services.common.store import Document
from services.reporting.domain import CaseCountRow, case_fact


class ReportRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.cases = db["reporting_cases"]

    async def ensure_indexes(self) -> None:
        await self.cases.create_index("month")

    async def record_case(self, case: CaseUpdated) -> None:
        """Keep the latest revision of a case: an older or repeated one changes nothing."""
        # A DuplicateKeyError means a revision as new or newer is already stored.
        with contextlib.suppress(DuplicateKeyError):
            await self.cases.update_one(
                {"_id": case.case_id, "revision": {"$lt": case.revision}},
                {"$set": case_fact(case)},
                upsert=True,
            )

    async def case_counts(self, *, month: str | None) -> list[CaseCountRow]:
        match: Document = {"month": {"$exists": True}} if month is None else {"month": month}
        pipeline: list[Document] = [
            {"$match": match},
            {
                "$group": {
                    "_id": {
                        "month": "$month",
                        "department": "$department",
                        "kind": "$kind",
                        "category": "$category",
                    },
                    "count": {"$sum": 1},
                }
            },
        ]
        rows = []
        async for group in await self.cases.aggregate(pipeline):
            key = group["_id"]
            rows.append(
                CaseCountRow(
                    month=key["month"],
                    department_code=key["department"]["code"],
                    department_zh=key["department"]["name_zh"],
                    department_en=key["department"]["name_en"],
                    kind=key["kind"],
                    category=key["category"],
                    count=group["count"],
                )
            )
        return rows

    async def case(self, case_id: str) -> Document | None:
        return await self.cases.find_one({"_id": case_id})
