"""Monitoring as operators run it: the Prometheus configuration and alert rules pass promtool
(with their unit tests, deploy/prometheus/alerts.test.yml), and a real Prometheus server
(Debian's) scrapes the four services, run as processes, and holds the series the alerts use.

promtool and prometheus come from Debian's `prometheus` package (deploy/local/setup.sh).
"""

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pymongo import MongoClient

from schemas.catalogue import BY_TYPE
from services.common.store import Document
from tests.conftest import InfraSettings
from tests.factories import complaint_payload
from tests.services import ROOT, created, running_services
from tests.waiting import eventually

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
SERVICES = {"intake": 8950, "router": 8951, "escalation": 8952, "reporting": 8953}
PROMETHEUS_PORT = 8959
PROMETHEUS_URL = f"http://127.0.0.1:{PROMETHEUS_PORT}"

ALERTS = {
    "QinglianServiceDown": ["up"],
    "QinglianConsumerLagging": ["qinglian_consumer_lag"],
    "QinglianConsumerLagUnknown": ["absent(qinglian_consumer_lag", 'up{job="qinglian"}'],
    "QinglianDeadLettersGrowing": [
        'qinglian_events_total{job="qinglian", event_type="dead_letter"}'
    ],
    "QinglianPoisonMessages": ["qinglian_poison_messages_total"],
    "QinglianCasesOverdue": ['qinglian_cases{job="qinglian", status="overdue"}'],
    "QinglianNotificationsFailed": ['qinglian_notifications_failed_total{job="qinglian"}'],
    "QinglianUrgentNotificationsUnacknowledged": [
        'qinglian_notifications_unacknowledged_overdue{job="qinglian", urgent="true"}'
    ],
}
"""Each alert operators rely on, with what its expression must read."""


def installed(program: str) -> str:
    if not os.access(program, os.X_OK):
        pytest.fail(f"{program} not found: run deploy/local/setup.sh (Debian's prometheus)")
    return program


def promtool(*arguments: str) -> str:
    done = subprocess.run(  # noqa: S603 (Debian's promtool on our own files)
        [installed(PROMTOOL), *arguments],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(arguments)} failed:\n{output}"
    return output


def _rules(path: Path) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


# --- The files, checked by promtool ------------------------------------------------------------


def test_the_alert_rules_and_the_configuration_pass_promtool() -> None:
    assert f"SUCCESS: {len(ALERTS)} rules found" in promtool("check", "rules", "alerts.yml")
    assert "is valid prometheus config file syntax" in promtool("check", "config", "prometheus.yml")


def test_the_alert_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_grafana_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query, as a recording rule, with Grafana's variables
    ($__range, $__rate_interval, $service) given values."""
    grafana_values = {"$__rate_interval": "1m", "$__range": "1d", "$service": ".*"}
    expressions = []
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        panels = [*dashboard["panels"]]
        panels += [inner for panel in panels for inner in panel.get("panels", [])]
        for panel in panels:
            for target in panel.get("targets", []):
                expression = target["expr"]
                for variable, value in grafana_values.items():
                    expression = expression.replace(variable, value)
                expressions.append(expression)
    assert expressions, "no dashboard queries found"
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text(
        json.dumps(  # JSON is YAML
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [
                            {"record": f"dashboard:query_{number}", "expr": expression}
                            for number, expression in enumerate(expressions)
                        ],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )

    assert f"SUCCESS: {len(expressions)} rules found" in promtool("check", "rules", str(rules))


def test_every_alert_is_there_and_unit_tested() -> None:
    alerts = {rule["alert"]: rule for rule in _rules(PROMETHEUS_DIR / "alerts.yml")}
    assert set(alerts) == set(ALERTS)
    for name, series in ALERTS.items():
        for part in series:
            assert part in alerts[name]["expr"], f"{name} does not read {part}"
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts.test.yml").read_text(encoding="utf-8"))
    tested: dict[str, set[bool]] = {name: set() for name in alerts}
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            tested[check["alertname"]].add(bool(check.get("exp_alerts")))
    for name, outcomes in tested.items():
        assert outcomes == {True, False}, f"{name} needs a test that fires and one that does not"


# --- A real Prometheus scraping the four services ----------------------------------------------


@dataclass(frozen=True)
class Monitored:
    prometheus: str
    urls: dict[str, str]


def _prometheus_config(path: Path) -> None:
    """prometheus.yml's job, on this machine's ports, scraped every second."""
    deployed = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = deployed["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"service": name}}
        for name, port in SERVICES.items()
    ]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS_DIR / "alerts.yml")],
        "scrape_configs": [job],
    }
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        assert process.poll() is None, f"prometheus exited:\n{log.read_text(errors='replace')}"
        try:
            return httpx.get(f"{PROMETHEUS_URL}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, f"prometheus not ready:\n{log.read_text()[-4000:]}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def monitored(
    infra: InfraSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    run_id = os.urandom(4).hex()
    work = tmp_path_factory.mktemp("prometheus")
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": f"prometheus_{run_id}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"prometheus-{run_id}-",
        "QINGLIAN_GAUGE_REFRESH_SECONDS": "1",
    }
    with running_services(SERVICES, env, work) as urls:
        config = work / "prometheus.yml"
        _prometheus_config(config)
        log = work / "prometheus.log"
        with log.open("wb") as output:
            prometheus = subprocess.Popen(  # noqa: S603 (Debian's prometheus, our config)
                [
                    installed(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(prometheus, log)
            _send_a_complaint_and_a_surrender(urls["intake"], env)
            yield Monitored(PROMETHEUS_URL, urls)
        finally:
            prometheus.send_signal(signal.SIGTERM)
            try:
                prometheus.wait(timeout=30)
            except subprocess.TimeoutExpired:
                prometheus.kill()
                pytest.fail(f"prometheus did not stop within 30 s of SIGTERM (log: {log})")
    client: MongoClient[Document]
    with MongoClient(infra.mongo_url) as client:
        client.drop_database(env["QINGLIAN_MONGO_DB"])


def _send_a_complaint_and_a_surrender(intake: str, env: dict[str, str]) -> None:
    """Traffic, so the series that only exist once something happened do: a complaint (the
    router opens a case) and a red envelope surrendered in time (escalation records it)."""
    api_key = created(
        env, "services.intake.keys", "--source", "portal", "--scopes", ",".join(BY_TYPE)
    )
    today = datetime.now(UTC)
    ref = uuid.uuid4().hex[:10]
    events = [
        {
            "event_type": "complaint",
            **complaint_payload(
                source_ref=f"PROM-{ref}",
                accused_staff_id=f"S-{ref}",
                occurred_at=(today - timedelta(hours=1)).isoformat(),
            ),
        },
        {
            "event_type": "red_envelope_surrender",
            "source_system": "portal",
            "source_ref": f"PROM-SURRENDER-{ref}",
            "occurred_at": (today - timedelta(hours=1)).isoformat(),
            "staff_id": f"S-{ref}",
            "amount_cny": "200.00",
            "received_on": (today - timedelta(days=1)).date().isoformat(),
            "surrendered_on": today.date().isoformat(),
        },
    ]
    answer = httpx.post(
        f"{intake}/v1/batch", json={"events": events}, headers={"X-API-Key": api_key}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert [item["status"] for item in answer.json()["results"]] == ["accepted", "accepted"]


async def _query(client: httpx.AsyncClient, expression: str) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/query", params={"query": expression})
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


@pytest.mark.infra
async def test_prometheus_scrapes_the_series_the_alerts_read(monitored: Monitored) -> None:
    async with httpx.AsyncClient(base_url=monitored.prometheus, timeout=10) as client:

        async def services_where(expression: str) -> set[str]:
            return {
                sample["metric"].get("service", "") for sample in await _query(client, expression)
            }

        async def every_service_up() -> bool:
            return await services_where('up{job="qinglian"} == 1') == set(SERVICES)

        await eventually(every_service_up, within=30, what="up == 1 for every service")

        expected = {
            # reporting's own series (its counters start at 0 for every event type)
            'qinglian_events_total{event_type="dead_letter"}': {"reporting"},
            'qinglian_events_total{event_type="complaint"}': {"reporting"},
            'qinglian_cases{status="overdue"}': {"reporting"},
            'qinglian_cases{status="open"}': {"reporting"},
            # once the traffic went through
            "qinglian_cases_opened_total": {"router"},
            "qinglian_decisions_total": {"escalation"},
            # FastStream's own from every service the traffic went through (intake's consumers
            # read only the raw topics, which this traffic does not use)
            "faststream_received_messages_total": set(SERVICES) - {"intake"},
            # the consumer lag from every service
            "qinglian_consumer_lag": set(SERVICES),
        }
        missing: dict[str, set[str]] = {}

        async def every_series_there() -> bool:
            missing.clear()
            for expression, services in expected.items():
                found = await services_where(expression)
                if not services <= found:
                    missing[expression] = services - found
            return not missing

        try:
            await eventually(every_series_there, within=60, what="the expected series")
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}; still missing: {missing}") from None

        # The deployed alert rules loaded, and evaluate without error on the real series.
        answer = await client.get("/api/v1/rules")
        rules = [rule for group in answer.json()["data"]["groups"] for rule in group["rules"]]
        assert {rule["name"] for rule in rules} == set(ALERTS)
        assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules
        firing = await _query(client, 'ALERTS{alertname="QinglianServiceDown"}')
        assert firing == []
