"""What escalation keeps, declared once on the store adapter (services/common/documents.py).

- ``escalation_conduct_files``: one versioned document per subject (``staff:S1``,
  ``company:C1``, ``department:D1``, ``case:CASE-…``): the file's events and the decisions
  published on it, the latest of each key. A change is saved only over the revision it was
  computed from (the adapter's guard), so two writers never both change one revision.
- ``escalation_watched``: subjects whose decisions depend on the clock (open cases, cut-offs
  in force), looked at again by the periodic check.
- ``escalation_leads_raised``: the leads raised, by their id (the audit trail of what opened
  a case).
"""

from pydantic import Field

from schemas.base import Contract
from schemas.decision import Decision, SubjectKind
from schemas.lead import Lead
from services.common.documents import Documents
from services.escalation.conduct import ConductFile


class KeptFile(Contract):
    """A conduct file as kept."""

    file: ConductFile
    published: tuple[Decision, ...] = Field(default=())
    """The decisions published on the file, the latest of each key (a list: keys are
    values, never field names)."""

    def by_key(self) -> dict[str, Decision]:
        return {decision.key: decision for decision in self.published}


class Watched(Contract):
    subject_kind: SubjectKind
    subject_id: str

    @classmethod
    def of(cls, file: ConductFile) -> "Watched":
        return cls(subject_kind=file.subject_kind, subject_id=file.subject_id)

    def blank(self) -> ConductFile:
        return ConductFile(subject_kind=self.subject_kind, subject_id=self.subject_id)


class EscalationStore:
    def __init__(self, documents: Documents) -> None:
        self.files = documents.versioned("escalation_conduct_files", KeptFile)
        self.watched = documents.records("escalation_watched", Watched)
        self.leads = documents.records("escalation_leads_raised", Lead)
