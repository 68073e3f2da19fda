"""Who may do what on Kafka (services/common/kafka_access.py), held to what the services do:
a service's user reads exactly the topics it subscribes to and writes exactly those it
publishes, each topic has one writer, and a raw sender writes its own topic and nothing else.
"""

from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from schemas import topics
from services.common.datafile import DataFileError
from services.common.kafka_access import ADMIN, REDRIVE, SERVICES, Grant, access_plan
from services.common.raw_senders import RAW_SENDERS_FILE, RESERVED_USERS, RawSenders
from services.desk.main import create_app as desk_app
from services.desk.settings import DeskSettings
from services.escalation.main import create_app as escalation_app
from services.escalation.settings import EscalationSettings
from services.intake.crypto import new_key
from services.intake.main import create_app as intake_app
from services.intake.settings import IntakeSettings
from services.notifier.main import create_app as notifier_app
from services.notifier.settings import NotifierSettings
from services.portal.main import create_app as portal_app
from services.portal.settings import PortalSettings
from services.reporting.main import create_app as reporting_app
from services.reporting.settings import ReportingSettings
from services.router.main import create_app as router_app
from services.router.settings import RouterSettings

SENDERS = RawSenders.from_file(RAW_SENDERS_FILE)
GROUP_PREFIX = "qinglian-"
PLAN = access_plan(SENDERS, group_prefix=GROUP_PREFIX)


@cache
def _app(service: str) -> FastAPI:
    """The service as production wires it (nothing is started)."""
    common: dict[str, Any] = {"kafka_bootstrap": "kafka:9092", "kafka_group_prefix": GROUP_PREFIX}
    if service == "intake":
        return intake_app(IntakeSettings(**common, contact_key=new_key()))
    if service == "router":
        return router_app(RouterSettings(**common))
    if service == "escalation":
        return escalation_app(EscalationSettings(**common))
    if service == "portal":
        return portal_app(PortalSettings(**common, portal_key="k" * 32))
    if service == "desk":
        return desk_app(DeskSettings(**common))
    if service == "notifier":
        return notifier_app(NotifierSettings(**common))
    return reporting_app(ReportingSettings(**common))


def _subscribed(service: str) -> dict[str, str]:
    """Topic → consumer group of each of the service's subscribers."""
    return {
        topic.name: subscriber.group_id
        for subscriber in _app(service).state.broker.subscribers
        for topic in subscriber.topics
    }


def _published(service: str) -> set[str]:
    return {publisher.topic for publisher in _app(service).state.broker.publishers}


def _granted(user: str, operation: str, resource: str = "topic") -> set[str]:
    return {
        grant.name
        for grant in PLAN.grants
        if (grant.user, grant.operation, grant.resource) == (user, operation, resource)
    }


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_services_user_reads_exactly_the_topics_the_service_subscribes_to(
    service: str,
) -> None:
    assert _granted(service, "READ") == set(_subscribed(service))


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_services_user_writes_exactly_what_it_publishes_and_its_dead_letters(
    service: str,
) -> None:
    # Every service sends the records it cannot handle to the dead-letter topic
    # (services/common/broker.py), through the broker rather than a declared publisher.
    assert _granted(service, "WRITE") == _published(service) | {topics.DEAD_LETTERS}


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_services_user_joins_only_its_own_consumer_groups(service: str) -> None:
    groups = [grant for grant in PLAN.grants if grant.user == service and grant.resource == "group"]

    assert groups == [Grant(service, "READ", "group", f"{GROUP_PREFIX}{service}.", prefixed=True)]
    for group in _subscribed(service).values():
        assert group.startswith(groups[0].name)
        for other in set(SERVICES) - {service}:
            assert not group.startswith(f"{GROUP_PREFIX}{other}.")


def test_each_topic_but_the_dead_letters_has_one_writer_among_the_services_and_senders() -> None:
    writers: dict[str, set[str]] = defaultdict(set)
    for grant in PLAN.grants:
        if grant.operation == "WRITE" and grant.user != REDRIVE:
            writers[grant.name].add(grant.user)

    assert writers.pop(topics.DEAD_LETTERS) == set(SERVICES)
    assert {topic: len(users) for topic, users in writers.items()} == dict.fromkeys(writers, 1)
    assert writers[topics.DECISIONS] == {"escalation"}
    assert writers[topics.CASES] == {"router"}
    for kind_topic in topics.FACTS:
        assert writers[kind_topic] == {"intake"}


def test_intake_reads_the_raw_senders_topics_and_keeps_no_case_map() -> None:
    assert _granted("intake", "READ") == set(SENDERS.topics())


def test_the_follow_up_codes_go_from_intake_to_the_portal_alone_which_reads_no_complaint() -> None:
    readers = {
        grant.user
        for grant in PLAN.grants
        if grant.name == topics.FOLLOW_UP_CODES and grant.operation == "READ"
    }

    assert readers == {"portal"}
    assert _granted("intake", "WRITE") >= {topics.FOLLOW_UP_CODES, topics.REPORTER_REPLIES}
    assert _granted("portal", "READ") == {
        topics.FOLLOW_UP_CODES,
        topics.CASES,
        topics.REPORTER_REPLIES,
    }
    assert _granted("portal", "WRITE") == {topics.REPORTER_ADDITIONS, topics.DEAD_LETTERS}


def test_a_raw_sender_writes_its_own_topic_and_nothing_else() -> None:
    assert SENDERS.senders
    for topic, user in SENDERS.topics().items():
        assert {grant for grant in PLAN.grants if grant.user == user} == {
            Grant(user, "WRITE", "topic", topic)
        }
        readers = {g.user for g in PLAN.grants if g.name == topic and g.operation == "READ"}
        assert readers == {"intake"}


def test_the_redrive_user_reads_the_dead_letters_and_writes_back_only_where_they_come_from() -> (
    None
):
    read_by_services = {t for service in SERVICES for t in _subscribed(service)}

    assert _granted(REDRIVE, "READ") == {topics.DEAD_LETTERS}
    assert _granted(REDRIVE, "WRITE") == read_by_services
    assert _granted(REDRIVE, "READ", "group") == set()


def test_admin_is_no_user_of_the_plan_and_no_one_else_may_create_alter_or_delete() -> None:
    assert ADMIN not in PLAN.users
    assert {grant.operation for grant in PLAN.grants} == {"READ", "WRITE"}
    assert {grant.user for grant in PLAN.grants} == set(PLAN.users)
    assert set(PLAN.users) == set(SERVICES) | {REDRIVE} | set(SENDERS.senders)
    assert set(SERVICES) | {ADMIN, REDRIVE} == RESERVED_USERS


def _senders(text: str) -> RawSenders:
    return RawSenders.from_toml(text, source="raw_senders.toml")


SENDER = """
version = "1"

[senders.{user}]
label_zh = "测试"
label_en = "Test"
source_system = "{source}"
event_types = {types}
"""


def test_a_sender_sends_only_as_its_own_source_system_and_only_its_event_types() -> None:
    senders = _senders(SENDER.format(user="his", source="his", types='["satisfaction"]'))
    his = senders.senders["his"]

    assert his.refusal("his", source_system="his", event_type="satisfaction") is None
    as_another = his.refusal("his", source_system="hr", event_type="satisfaction")
    assert as_another is not None
    assert as_another.field == "source_system"
    other_type = his.refusal("his", source_system="his", event_type="visitor_log")
    assert other_type is not None
    assert other_type.field == "event_type"
    assert senders.topics() == {"qinglian.intake.raw.his.v1": "his"}


@pytest.mark.parametrize(
    ("user", "types", "problem"),
    [
        ("router", '["satisfaction"]', "senders.router: 'router' is reserved"),
        ("admin", '["satisfaction"]', "senders.admin: 'admin' is reserved"),
        ("his", '["bribe_ledger"]', "senders.his.event_types[1]: Input should be"),
        ("his", "[]", "senders.his.event_types: "),
        ("HIS", '["satisfaction"]', "senders.HIS.[key]: String should match pattern"),
    ],
)
def test_a_senders_file_that_cannot_be_used_is_refused_naming_the_line(
    user: str, types: str, problem: str
) -> None:
    with pytest.raises(DataFileError) as refused:
        _senders(SENDER.format(user=user, source="his", types=types))

    assert str(refused.value).startswith("raw_senders.toml:")
    assert problem in str(refused.value)


def test_the_senders_file_is_a_data_file_beside_the_common_code() -> None:
    assert Path(RAW_SENDERS_FILE).parent.name == "common"
    assert all(user not in RESERVED_USERS for user in SENDERS.senders)
