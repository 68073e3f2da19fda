"""What the portal keeps, declared once on the store adapter (services/common/documents.py).
Everything but the wrong codes comes from Kafka and could be read again from the topics.

- ``portal_codes``: the follow-up codes intake gave, under their SHA-256 (never a code);
- ``portal_case_links``: the case each complaint is part of, under the complaint's event id;
- ``portal_cases``: each complaint case's state, at its highest revision seen;
- ``portal_replies``: the conduct office's replies, under their event ids, found by case;
- ``portal_additions``: what reporters added, under their event ids, found by complaint;
- ``portal_wrong_codes``: one document per wrong code, found by its client's and group's
  HMAC (services/portal/wrong_codes.py);
- ``portal_rating_marks``: one document per rating sent, found by an HMAC of its device and
  sheet or of its address (services/portal/ratings.py).
"""

from datetime import datetime

from pydantic import BaseModel

from services.common.documents import Documents
from services.portal.domain import Added, CaseLink, CaseProgress, KnownCode, Reply


class Attempt(BaseModel):
    """Something counted against a client: a wrong code, a rating."""

    key: str
    """An HMAC of who it is counted against (never an address, a code or a cookie)."""
    at: datetime


class PortalStore:
    def __init__(self, documents: Documents) -> None:
        self.codes = documents.records("portal_codes", KnownCode, fields=("complaint_event_id",))
        self.links = documents.records("portal_case_links", CaseLink)
        self.cases = documents.records("portal_cases", CaseProgress)
        self.replies = documents.records("portal_replies", Reply, fields=("case_id",))
        self.additions = documents.records(
            "portal_additions", Added, fields=("complaint_event_id",)
        )
        self.wrong_codes = documents.records("portal_wrong_codes", Attempt, fields=("key",))
        self.rating_marks = documents.records("portal_rating_marks", Attempt, fields=("key",))
