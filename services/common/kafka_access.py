"""Who may do what on Kafka: the one table of Qinglian's Kafka users and ACLs. Pure.

Production (deploy/docker-compose.yml) and the local runtime's secure mode
(``deploy/local/runtime.sh start kafka-secure``) both apply this plan with
``python -m services.common.kafka_setup``; each service makes sure the topics it uses exist
from the same table (``SERVICES``). KRaft's StandardAuthorizer denies whatever no ACL allows, so:

- each service (its own SCRAM user) reads the topics it consumes and writes those it
  publishes (and the dead-letter topic, where its poison messages go), and uses only consumer
  groups under its own prefix (``<QINGLIAN_KAFKA_GROUP_PREFIX><service>.``);
- each raw sender (``raw_senders.toml``) writes its own raw topic and nothing else;
- the redrive command reads the dead letters and writes them back where they came from: any
  topic a service reads;
- ``admin`` (the broker itself, kafka-setup, operators) is the only super user.

Producers are idempotent: Kafka 4 lets a user with WRITE on a topic produce idempotently
without the cluster-wide IDEMPOTENT_WRITE (KIP-679), so none is granted. No one but admin may
create topics: kafka-setup creates them all before the services start.
"""

from dataclasses import dataclass
from typing import Literal

from schemas import topics
from services.common.raw_senders import RawSenders

ADMIN = "admin"
REDRIVE = "redrive"


@dataclass(frozen=True)
class TopicAccess:
    reads: tuple[str, ...]
    writes: tuple[str, ...]

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic read or written, each once: those the service makes sure exist."""
        return tuple(dict.fromkeys(self.reads + self.writes))


SERVICES: dict[str, TopicAccess] = {
    "intake": TopicAccess(
        reads=(),  # every raw sender's topic (raw_senders.toml), and nothing else
        writes=(
            *topics.FACTS,
            topics.FOLLOW_UP_CODES,
            topics.REPORTER_REPLIES,
            topics.DEAD_LETTERS,
        ),
    ),
    "router": TopicAccess(
        reads=(
            topics.COMPLAINTS,
            topics.LEADS,
            topics.INVESTIGATION_FINDINGS,
            topics.CASE_ACTIONS,
            topics.REPORTER_ADDITIONS,
            topics.REPORTER_REPLIES,
        ),
        writes=(topics.CASES, topics.DEAD_LETTERS),
    ),
    "escalation": TopicAccess(
        reads=(
            topics.COMPLAINTS,
            topics.INVESTIGATION_FINDINGS,
            topics.PROMOTION_APPLICATIONS,
            topics.PRESCRIPTION_RANKINGS,
            topics.RED_ENVELOPE_SURRENDERS,
            topics.VISITOR_LOGS,
            topics.SATISFACTION_RATINGS,
            topics.RECTIFICATION_STATUSES,
            topics.CASES,
        ),
        writes=(topics.DECISIONS, topics.LEADS, topics.DEAD_LETTERS),
    ),
    "reporting": TopicAccess(
        reads=(*topics.FACTS, topics.CASES, topics.DECISIONS, topics.DEAD_LETTERS),
        writes=(topics.DEAD_LETTERS,),
    ),
    # The desk's actions go to intake over HTTP, as other systems' events do.
    "desk": TopicAccess(
        reads=(
            topics.COMPLAINTS,
            topics.INVESTIGATION_FINDINGS,
            topics.CASES,
            topics.DECISIONS,
            topics.REPORTER_ADDITIONS,
            topics.REPORTER_REPLIES,
            topics.NOTIFICATIONS,
            topics.ACKNOWLEDGEMENTS,
        ),
        # Acknowledgements of notifications, made through their signed links.
        writes=(topics.ACKNOWLEDGEMENTS, topics.DEAD_LETTERS),
    ),
    "portal": TopicAccess(
        # What a reporter may see, and no complaint's text: the codes' digests, not the
        # complaints (services/portal/domain.py).
        reads=(topics.FOLLOW_UP_CODES, topics.CASES, topics.REPORTER_REPLIES),
        writes=(topics.REPORTER_ADDITIONS, topics.DEAD_LETTERS),
    ),
    # Decisions and overdue cases to the people responsible; their acknowledgements back.
    "notifier": TopicAccess(
        reads=(topics.DECISIONS, topics.CASES, topics.ACKNOWLEDGEMENTS),
        writes=(topics.NOTIFICATIONS, topics.DEAD_LETTERS),
    ),
}
"""What each service consumes and publishes (tests/unit/test_kafka_access.py holds this to
the services' subscribers and publishers)."""


def reads_of(service: str, senders: RawSenders) -> tuple[str, ...]:
    extra = tuple(senders.topics()) if service == "intake" else ()
    return SERVICES[service].reads + extra


def all_topics(senders: RawSenders) -> tuple[str, ...]:
    """Every topic of the system, the raw senders' included."""
    return tuple(dict.fromkeys((*topics.ALL, *senders.topics())))


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL: ``user`` may ``operation`` on the topic or consumer group ``name`` (or on
    every group whose name starts with it, when ``prefixed``)."""

    user: str
    operation: Literal["READ", "WRITE"]
    resource: Literal["topic", "group"]
    name: str
    prefixed: bool = False


@dataclass(frozen=True)
class AccessPlan:
    users: tuple[str, ...]
    """The SCRAM users besides admin (created at the broker's first start)."""
    grants: frozenset[Grant]


def access_plan(senders: RawSenders, *, group_prefix: str) -> AccessPlan:
    grants: set[Grant] = set()
    for service, access in SERVICES.items():
        grants.update(Grant(service, "READ", "topic", t) for t in reads_of(service, senders))
        grants.update(Grant(service, "WRITE", "topic", t) for t in access.writes)
        grants.add(Grant(service, "READ", "group", f"{group_prefix}{service}.", prefixed=True))
    for topic, user in senders.topics().items():
        grants.add(Grant(user, "WRITE", "topic", topic))
    # A dead letter goes back to the topic it was read from: one some service reads.
    redrivable = {t for service in SERVICES for t in reads_of(service, senders)}
    grants.add(Grant(REDRIVE, "READ", "topic", topics.DEAD_LETTERS))
    grants.update(Grant(REDRIVE, "WRITE", "topic", t) for t in redrivable)
    return AccessPlan(users=(*SERVICES, REDRIVE, *senders.senders), grants=frozenset(grants))
