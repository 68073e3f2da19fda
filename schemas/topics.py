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

RAW_INTAKE = "qinglian.intake.raw.v1"
"""Submissions other systems publish directly (any event type, told apart by event_type);
intake validates them and publishes the accepted events on their fact topics."""

DEAD_LETTERS = "qinglian.dead-letters.v1"
"""Records that could not be accepted or processed: the original bytes and the reason."""

REPORTER_ADDITIONS = "qinglian.reporter-additions.v1"
"""Information reporters added with their follow-up code; key: the complaint's event_id."""

REPORTER_REPLIES = "qinglian.reporter-replies.v1"
"""Messages the conduct office sent back to reporters; key: case_id."""

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
    LEADS,
    DECISIONS,
    CASES,
    RAW_INTAKE,
    DEAD_LETTERS,
)
"""Every topic Qinglian uses."""

INTAKE_TOPICS = (
    *FACTS,
    REPORTER_ADDITIONS,
    REPORTER_REPLIES,
    RAW_INTAKE,
    DEAD_LETTERS,
    CASES,
)
"""The topics intake reads or writes."""

RETENTION_MS = {RAW_INTAKE: 7 * 24 * 3600 * 1000}
"""Topics kept for a limited time. Every other topic is kept forever: reports are rebuilt by
replaying them. The raw topic's records are re-published as facts once accepted."""
