"""Kafka topic names. One topic per fact; a report is rebuilt by replaying them."""

COMPLAINTS = "qinglian.complaints.v1"
"""Complaints accepted by intake; key: event_id."""

CASES_ROUTED = "qinglian.cases.routed.v1"
"""Cases with their departments; key: case_id."""

CASE_DEADLINES = "qinglian.cases.deadlines.v1"
"""Investigation deadlines set by escalation; key: case_id."""

ALL = (COMPLAINTS, CASES_ROUTED, CASE_DEADLINES)
