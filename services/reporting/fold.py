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
from dataclasses import dataclass, field

from schemas.decision import Decision
from schemas.kpi import KpiObservationReceived
from schemas.training import TrainingHeldReceived
from services.reporting.facts import CaseFact, CountKey
from services.reporting.repository import (
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
        self.cases: dict[str, CaseFact] = {}
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

    async def record_case(self, fact: CaseFact) -> None:
        kept = self.cases.get(fact.case_id)
        if kept is None or kept.revision < fact.revision:
            self.cases[fact.case_id] = fact

    async def record_decision(self, decision: Decision) -> bool:
        return self.decisions.setdefault(str(decision.event_id), decision) is decision

    async def record_observation(self, observation: KpiObservationReceived) -> None:
        kept = self.observations.get(observation_id(observation))
        if kept is None or kept.occurred_at < observation.occurred_at:
            self.observations[observation_id(observation)] = observation

    async def record_training(self, session: TrainingHeldReceived) -> None:
        self.sessions.setdefault(str(session.event_id), session)

    async def write(self, reports: ReportRepository) -> int:
        """Insert every document into the (new) database; how many."""
        collections = {
            reports.counts.name: (
                count_document(document_id, month=c.month, offset=c.offset, counts=c.counts)
                for document_id, c in self.counts.items()
            ),
            reports.cases.name: map(case_document, self.cases.values()),
            reports.decisions.name: map(decision_document, self.decisions.values()),
            reports.kpi.name: map(observation_document, self.observations.values()),
            reports.training.name: map(training_document, self.sessions.values()),
        }
        return sum([await reports.insert_new(name, docs) for name, docs in collections.items()])
