"""Report facts folded in memory, for a rebuild from the start of the topics.

The live service writes to the store once per record (``ReportRepository``); a rebuild reads
every record once, in partition order, into a new database, so it keeps what those writes
would leave in memory and inserts each document once at the end. Memory grows with documents
(count documents per topic, partition and month; cases; decisions; KPI; sessions), not with
records. The rules are the repository's: a count only past the document's last offset, a
case's highest revision, a decision once, an observation's latest by event time, a session
once.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from schemas.decision import Decision
from schemas.kpi import KpiObservationReceived
from schemas.training import TrainingHeldReceived
from services.common.store import Document
from services.reporting.facts import CaseRecord, CountKey
from services.reporting.repository import (
    CASES,
    COUNTS,
    DECISIONS,
    KPI,
    TRAINING,
    ReportRepository,
    case_document,
    count_document,
    count_document_id,
    decision_document,
    observation_document,
    observation_id,
    training_document,
)


@dataclass
class _Counted:
    month: str
    offset: int
    counts: Counter[CountKey] = field(default_factory=Counter)


class FoldedReports:
    def __init__(self) -> None:
        self.counts: dict[str, _Counted] = {}
        self.cases: dict[str, CaseRecord] = {}
        self.decisions: dict[str, Decision] = {}
        self.observations: dict[str, KpiObservationReceived] = {}
        self.sessions: dict[str, TrainingHeldReceived] = {}

    async def count(self, key: CountKey, *, topic: str, partition: int, offset: int) -> bool:
        document_id = count_document_id(topic, partition, key.month)
        counted = self.counts.setdefault(document_id, _Counted(key.month, -1))
        if offset <= counted.offset:
            return False
        counted.offset = offset
        counted.counts[key] += 1
        return True

    async def record_case(self, record: CaseRecord) -> None:
        kept = self.cases.get(record.case_id)
        if kept is None or kept.revision < record.revision:
            self.cases[record.case_id] = record

    async def record_decision(self, decision: Decision) -> bool:
        return self.decisions.setdefault(str(decision.event_id), decision) is decision

    async def record_observation(self, observation: KpiObservationReceived) -> None:
        kept = self.observations.get(observation_id(observation))
        if kept is None or kept.occurred_at < observation.occurred_at:
            self.observations[observation_id(observation)] = observation

    async def record_training(self, session: TrainingHeldReceived) -> None:
        self.sessions.setdefault(str(session.event_id), session)

    def documents(self) -> dict[str, Iterator[Document]]:
        """Per collection, the documents the repository's writes would have left."""
        return {
            COUNTS: (
                count_document(document_id, month=c.month, offset=c.offset, counts=c.counts)
                for document_id, c in self.counts.items()
            ),
            CASES: map(case_document, self.cases.values()),
            DECISIONS: map(decision_document, self.decisions.values()),
            KPI: map(observation_document, self.observations.values()),
            TRAINING: map(training_document, self.sessions.values()),
        }

    async def write(self, reports: ReportRepository) -> int:
        """Insert every document into the (new) database; how many."""
        return sum([await reports.insert_new(n, d) for n, d in self.documents().items()])
