"""Every metric is declared once in services/common/metrics.toml and made by name from it."""

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.common.metrics import Metrics, catalogue, counter, metric
from services.intake.metrics import IntakeMetrics
from services.notifier.metrics import NotifierMetrics


def test_a_service_s_metrics_are_made_as_the_catalogue_declares_them() -> None:
    registry = CollectorRegistry()
    intake, notifier = IntakeMetrics.on(registry), NotifierMetrics.on(registry)
    intake.submissions.labels("complaint", "accepted").inc()
    notifier.overdue.labels("true").set(2)

    submitted = {"event_type": "complaint", "outcome": "accepted"}
    assert registry.get_sample_value("qinglian_intake_submissions_total", submitted) == 1
    overdue = "qinglian_notifications_unacknowledged_overdue"
    assert registry.get_sample_value(overdue, {"urgent": "true"}) == 2
    described = {family.name: family.documentation for family in registry.collect()}
    assert described[overdue] == catalogue().metric[overdue].help


def test_a_metric_made_as_another_kind_than_declared_is_refused() -> None:
    @dataclass(frozen=True)
    class Mistaken(Metrics):
        submissions: Gauge = metric("qinglian_intake_submissions")

    with pytest.raises(TypeError, match="declared a counter, not a gauge"):
        Mistaken.on(CollectorRegistry())


def test_a_metric_the_catalogue_does_not_declare_cannot_be_made() -> None:
    with pytest.raises(KeyError, match="qinglian_undeclared"):
        counter("qinglian_undeclared", CollectorRegistry())


def test_labels_are_those_declared() -> None:
    registry = CollectorRegistry()
    made: Counter = counter("qinglian_cases_opened", registry)
    made.labels(department="d1", kind="complaint", category="kickback").inc()
    opened = {"department": "d1", "kind": "complaint", "category": "kickback"}
    assert registry.get_sample_value("qinglian_cases_opened_total", opened) == 1
    with pytest.raises(ValueError, match="label"):
        made.labels(department="d1")
