"""What the notifier keeps, declared once on the store adapter (services/common/documents.py).

- ``notifier_outbox``: every notification, versioned: recorded (revision 1, first writer
  wins: a redelivered decision finds its notifications there) before it is sent, then each
  attempt, its sending, its acknowledgement and its follow-ups saved over the revision they
  were computed from (FerretDB makes no conditional update atomic; the adapter's revision
  documents do). Query fields: ``status`` (what is still to send), ``awaiting_ack`` (what
  reminders look at) and ``announced`` (whose latest state is still to publish), small sets.
- ``notifier_cases``: what a decision's addressees depend on of its case (the highest
  revision seen), and what the heads' digests list (query fields: the responsible department,
  whether the deadline still runs); ``notifier_staff``: the department of each accused staff
  member, from the cases; ``notifier_waiting``: decisions about a case the notifier has not
  seen yet, by case.
"""

from pydantic import BaseModel, ConfigDict

from schemas.decision import Decision
from services.common.documents import Documents
from services.notifier.domain import CaseFacts, Notification


class StaffDepartment(BaseModel):
    model_config = ConfigDict(frozen=True)

    staff_id: str
    department: str


class NotifierStore:
    def __init__(self, documents: Documents) -> None:
        self.outbox = documents.versioned(
            "notifier_outbox", Notification, fields=("status", "awaiting_ack", "announced")
        )
        self.cases = documents.records(
            "notifier_cases", CaseFacts, fields=("responsible_department", "awaiting_finding")
        )
        self.staff = documents.records("notifier_staff", StaffDepartment)
        self.waiting = documents.records("notifier_waiting", Decision, fields=("case_id",))
