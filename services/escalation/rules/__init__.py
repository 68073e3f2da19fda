"""The hospital's rules, one module per subject, each rule a pure function of (event, the
state it needs, the rule book[, now]) returning its decisions with the rule id, the rule-book
version and a one-sentence explanation in Chinese and English.

- ``leads``: R-REP-VISIT, R-SATISFACTION-LEAD, R-RECTIFY — events that open a case.
"""
