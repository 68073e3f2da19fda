"""Kafka topic names. One topic per fact; a report is rebuilt by replaying them.

Each fact topic is keyed so that events that must stay in order share a partition; the key of
each event type is in ``schemas.catalogue`` (``EventKind.key_field``).
"""

COMPLAINTS = "qinglian.complaints.v1"
"""Complaints accepted by intake; key: event_id."""

VISITOR_LOGS = "qinglian.visitor-logs.v1"
"""Sales-rep visits (医药代表来访) accepted by intake; key: company_code."""

SATISFACTION_RATINGS = "qinglian.satisfaction-ratings.v1"
"""Instant satisfaction ratings (即时满意度评价) accepted by intake; key: event_id."""

INVESTIGATION_FINDINGS = "qinglian.investigation-findings.v1"
"""Investigation findings (调查结论) accepted by intake; key: case_id."""

PROMOTION_APPLICATIONS = "qinglian.promotion-applications.v1"
"""Promotion applications (提职晋级申请) accepted by intake; key: staff_id."""

RED_ENVELOPE_SURRENDERS = "qinglian.red-envelope-surrenders.v1"
"""Red envelopes surrendered voluntarily (红包主动上缴) accepted by intake; key: staff_id."""

PRESCRIPTION_RANKINGS = "qinglian.prescription-rankings.v1"
"""Drug and consumable use rankings (药品耗材使用排名) accepted by intake; key: staff_id."""

TRAINING_SESSIONS = "qinglian.training-sessions.v1"
"""Study and warning-education sessions (专题学习) accepted by intake; key: department."""

KPI_OBSERVATIONS = "qinglian.kpi-observations.v1"
"""KPI observations accepted by intake; key: metric."""

RECTIFICATION_STATUSES = "qinglian.rectification-statuses.v1"
"""Rectification statuses (整改) accepted by intake; key: department."""

CASE_ACTIONS = "qinglian.case-actions.v1"
"""Actions the conduct office took on cases (reassign, start, close) accepted by intake;
key: case_id."""

LEADS = "qinglian.leads.v1"
"""Events escalation's rules judged to need a case (线索); key: source_event_id."""

DECISIONS = "qinglian.decisions.v1"
"""Escalation's decisions (escalations, measures, bars, cut-offs, alerts, notices, promotion
decisions), each with its rule and explanation; corrections and withdrawals too; key: the
subject's id (staff, company, department or case)."""

CASES = "qinglian.cases.v1"
"""Each case as it stands after each change, with its departments, state, deadline and
history; key: case_id."""

RAW_PREFIX = "qinglian.intake.raw."
"""Submissions other systems publish directly: each sending system (a raw sender, listed in
``services/common/raw_senders.toml``) has a topic of its own, ``raw_topic(sender)``, that only
its Kafka user may write; any event type, told apart by event_type. Intake validates them,
accepts from each sender only its own source system and event types, and publishes the
accepted events on their fact topics."""


def raw_topic(sender: str) -> str:
    """The raw topic of one sender (its Kafka user name): ``qinglian.intake.raw.his.v1``."""
    return f"{RAW_PREFIX}{sender}.v1"


DEAD_LETTERS = "qinglian.dead-letters.v1"
"""Records that could not be accepted or processed: the original bytes and the reason."""

REPORTER_ADDITIONS = "qinglian.reporter-additions.v1"
"""Information reporters added with their follow-up code; key: the complaint's event_id."""

REPORTER_REPLIES = "qinglian.reporter-replies.v1"
"""Messages the conduct office sent back to reporters; key: case_id."""

FOLLOW_UP_CODES = "qinglian.follow-up-codes.v1"
"""The follow-up code intake gave with each complaint, as its SHA-256 only (the code itself
travels nowhere but in intake's answer): how the reporters' portal recognises a code. Read by
the portal alone; key: the complaint's event_id."""

ACKNOWLEDGEMENTS = "qinglian.acknowledgements.v1"
"""Acknowledgements of the notifier's notifications, made on the desk through each
notification's signed link; key: the notification's id."""

NOTIFICATIONS = "qinglian.notifications.v1"
"""Each notification as it stands after each change (recorded, sent, failed): what it is
about, whom it addresses (by role or group, never an address), its state; key: the
notification's id."""

FACTS = (
    COMPLAINTS,
    VISITOR_LOGS,
    SATISFACTION_RATINGS,
    INVESTIGATION_FINDINGS,
    PROMOTION_APPLICATIONS,
    RED_ENVELOPE_SURRENDERS,
    PRESCRIPTION_RANKINGS,
    TRAINING_SESSIONS,
    KPI_OBSERVATIONS,
    RECTIFICATION_STATUSES,
    CASE_ACTIONS,
)
"""The topics of the facts intake accepts, one per event type, in DESIGN.md's order."""

ALL = (
    *FACTS,
    REPORTER_ADDITIONS,
    REPORTER_REPLIES,
    FOLLOW_UP_CODES,
    LEADS,
    DECISIONS,
    CASES,
    ACKNOWLEDGEMENTS,
    NOTIFICATIONS,
    DEAD_LETTERS,
)
"""Every topic Qinglian uses, but the raw senders' (one per sender, ``raw_topic``)."""

RAW_RETENTION_MS = 7 * 24 * 3600 * 1000


def retention_ms(topic: str) -> int:
    """How long ``topic`` keeps its records: forever (-1), as reports are rebuilt by replaying
    them, but the raw topics, whose records are re-published as facts once accepted."""
    return RAW_RETENTION_MS if topic.startswith(RAW_PREFIX) else -1
