"""A service's metrics class and the metrics.toml beside it agree, or the service does not
start (services/common/metrics.py)."""

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter

from services.common.datafile import DataFileError
from services.intake.metrics import IntakeMetrics
from services.notifier.metrics import NotifierMetrics


def test_each_service_s_metrics_are_made_as_its_file_lists_them() -> None:
    registry = CollectorRegistry()
    intake, notifier = IntakeMetrics.on(registry), NotifierMetrics.on(registry)
    intake.submissions.labels("complaint", "accepted").inc()
    notifier.overdue.labels("true").set(2)
    submitted = {"event_type": "complaint", "outcome": "accepted"}
    assert registry.get_sample_value("qinglian_intake_submissions_total", submitted) == 1
    overdue = "qinglian_notifications_unacknowledged_overdue"
    assert registry.get_sample_value(overdue, {"urgent": "true"}) == 2


def test_a_field_the_file_does_not_list_is_refused() -> None:
    @dataclass(frozen=True)
    class Unlisted(IntakeMetrics):
        rejected_logins: Counter

    Unlisted.__module__ = IntakeMetrics.__module__  # read intake's metrics.toml
    with pytest.raises(DataFileError, match=r"metrics\.toml: .* rejected_logins"):
        Unlisted.on(CollectorRegistry())
