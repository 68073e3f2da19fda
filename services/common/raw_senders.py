"""Systems that publish straight to Kafka (raw senders): a data file that intake and the Kafka
access plan (``services.common.kafka_access``) read the same way. Pure.

Kafka does not stamp a record with the user that produced it, so a sender is known by the topic
it writes: each sender has a topic of its own (``schemas.topics.raw_topic``), that only its Kafka
user may write. Like an API key over HTTP, a sender may send only as its own source system and
only its event types; intake refuses anything else from its topic.
"""

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.base import SourceSystem
from schemas.catalogue import EventType
from schemas.dead_letter import Problem
from schemas.topics import raw_topic
from services.common.datafile import DataFile, Location

RAW_SENDERS_FILE = Path(__file__).with_name("raw_senders.toml")

RESERVED_USERS = frozenset(
    {
        "admin",
        "intake",
        "router",
        "escalation",
        "reporting",
        "desk",
        "portal",
        "notifier",
        "redrive",
    }
)
"""Kafka users that are not senders: the broker's administrator, the services, the redrive
command."""

KafkaUser = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,47}$")]
"""A Kafka (SCRAM) user name; a sender's also names its topic and its password's secret file."""


class RawSender(DataFile):
    label_zh: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    source_system: SourceSystem
    """The only ``source_system`` its records may name."""
    event_types: tuple[EventType, ...] = Field(min_length=1)
    """The only event types it may send."""

    def refusal(self, user: str, *, source_system: str, event_type: str) -> Problem | None:
        """Why this sender may not send such a record, or None if it may."""
        if source_system != self.source_system:
            return Problem(
                field="source_system",
                reason=f"sender {user!r} sends as source system {self.source_system!r} only",
            )
        if event_type not in self.event_types:
            return Problem(
                field="event_type", reason=f"sender {user!r} may not send {event_type} events"
            )
        return None


class RawSenders(DataFile):
    version: str
    senders: dict[KafkaUser, RawSender]
    """Keyed by the sender's Kafka user name."""

    def cross_check(self) -> list[tuple[Location, str]]:
        return [
            (("senders", user), f"{user!r} is reserved for Qinglian's own Kafka users")
            for user in self.senders
            if user in RESERVED_USERS
        ]

    def topics(self) -> dict[str, str]:
        """Each sender's raw topic → the sender's Kafka user."""
        return {raw_topic(user): user for user in self.senders}
