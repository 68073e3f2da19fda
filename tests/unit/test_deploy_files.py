"""What operators rely on in deploy/: the compose file, the image, the Prometheus config,
Grafana's provisioning, Kafka's and MongoDB's authentication, and the secrets.

Nothing here starts a container; the files are parsed and checked against the code they run
(Kafka's start script runs, with stand-ins for the image's programs).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import shlex
import stat
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from services.common.metrics import catalogue
from services.common.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "docker-compose.yml"
PROMETHEUS_DIR = DEPLOY_DIR / "prometheus"
PROMETHEUS_FILE = PROMETHEUS_DIR / "prometheus.yml"
# Where the prom/prometheus image reads its configuration by default.
PROMETHEUS_CONFIG_IN_CONTAINER = PurePosixPath("/etc/prometheus/prometheus.yml")
DATA_STORES = ("kafka", "mongodb")
SECRETS_DIR = DEPLOY_DIR / "secrets"
SECRETS_README = SECRETS_DIR / "README.md"
SECRETS_IN_CONTAINER = PurePosixPath("/run/secrets")
KAFKA_START_SCRIPT = DEPLOY_DIR / "kafka" / "start.sh"
GRAFANA_DIR = DEPLOY_DIR / "grafana"
GRAFANA_DATASOURCES_DIR = GRAFANA_DIR / "provisioning" / "datasources"
GRAFANA_DASHBOARD_PROVIDERS_DIR = GRAFANA_DIR / "provisioning" / "dashboards"
GRAFANA_DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
# Where the grafana/grafana image reads its provisioning by default.
GRAFANA_PROVISIONING_IN_CONTAINER = PurePosixPath("/etc/grafana/provisioning")
MONGODB_INIT_IN_CONTAINER = PurePosixPath("/docker-entrypoint-initdb.d")


def _service_packages() -> list[str]:
    """Every runnable service package: a directory under services/ with a __main__.py."""
    return sorted(
        main.parent.name
        for main in (REPO_ROOT / "services").glob("*/__main__.py")
        if main.parent.name != "common"
    )


SERVICE_NAMES = _service_packages()


@cache
def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _compose_services() -> dict[str, Any]:
    services: dict[str, Any] = _load_yaml(COMPOSE_FILE)["services"]
    return services


def _compose_service(name: str) -> dict[str, Any]:
    services = _compose_services()
    assert name in services, f"docker-compose.yml has no service {name!r}"
    service: dict[str, Any] = services[name]
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _as_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def _own_settings_class(name: str) -> type[ServiceSettings]:
    """The one ServiceSettings subclass defined in services/<name>/settings.py."""
    module = importlib.import_module(f"services.{name}.settings")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, ServiceSettings)
        and cls is not ServiceSettings
        and cls.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module.__name__} should define one ServiceSettings subclass"
    return classes[0]


def _default_http_port(name: str) -> int:
    field = _own_settings_class(name).model_fields["http_port"]
    return int(field.get_default(call_default_factory=True))


def _compose_port(name: str) -> int:
    env = _environment(_compose_service(name))
    assert "QINGLIAN_HTTP_PORT" in env, f"{name} sets no QINGLIAN_HTTP_PORT"
    return int(env["QINGLIAN_HTTP_PORT"])


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host_ip, host_port) for each published port; host_ip is "" when unbound."""
    published = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.append((str(port.get("host_ip", "")), str(port.get("published", ""))))
            continue
        parts = str(port).split(":")
        host_ip = ":".join(parts[:-2]) if len(parts) >= 3 else ""
        host_port = parts[-2] if len(parts) >= 2 else parts[-1]
        published.append((host_ip, host_port))
    return published


def _walk(node: Any) -> Iterator[str]:
    """Every mapping key and scalar value in a parsed YAML document, as text."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif node is not None:
        yield str(node)


def _bind_mounts(service: dict[str, Any]) -> dict[Path, PurePosixPath]:
    """Host file (resolved against the compose file's directory) -> path in the container."""
    mounts: dict[Path, PurePosixPath] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume["target"])
        else:
            source, target, *_ = str(volume).split(":")
        if source.startswith((".", "/")):
            mounts[(DEPLOY_DIR / source).resolve()] = PurePosixPath(target)
    return mounts


def _scrape_targets(job_name: str) -> dict[str, dict[str, str]]:
    """target -> labels of the named Prometheus job."""
    jobs = [
        job for job in _load_yaml(PROMETHEUS_FILE)["scrape_configs"] if job["job_name"] == job_name
    ]
    assert len(jobs) == 1, f"prometheus.yml should have one job named {job_name!r}"
    job = jobs[0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets: dict[str, dict[str, str]] = {}
    for static in job["static_configs"]:
        for target in static["targets"]:
            targets[target] = static.get("labels", {})
    return targets


def test_service_packages_are_discovered_without_the_common_package() -> None:
    assert SERVICE_NAMES, "no services/<name>/__main__.py found"
    assert "common" not in SERVICE_NAMES


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_package_has_a_compose_service_that_runs_it(name: str) -> None:
    service = _compose_service(name)

    assert _as_argv(service["command"]) == ["python", "-m", f"services.{name}"]


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_is_built_from_the_repo_root_with_the_shared_dockerfile(name: str) -> None:
    build = _compose_service(name)["build"]

    assert (DEPLOY_DIR / build["context"]).resolve() == REPO_ROOT
    assert (REPO_ROOT / build["dockerfile"]).resolve() == DEPLOY_DIR / "Dockerfile"
    assert (DEPLOY_DIR / "Dockerfile").is_file()


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_qinglian_environment_key_names_a_settings_field(name: str) -> None:
    prefix = str(ServiceSettings.model_config.get("env_prefix", ""))
    assert prefix == "QINGLIAN_"
    fields = _own_settings_class(name).model_fields
    keys = [key for key in _environment(_compose_service(name)) if key.startswith(prefix)]

    unknown = [key for key in keys if key.removeprefix(prefix).lower() not in fields]

    assert keys, f"{name} sets no {prefix}* environment"
    assert unknown == [], f"{name} sets variables its settings never read: {unknown}"


def test_environment_shared_by_every_service_names_fields_of_the_common_settings() -> None:
    environments = [set(_environment(_compose_service(name))) for name in SERVICE_NAMES]
    assert environments, "no service packages found"
    shared = set.intersection(*environments)
    common = ServiceSettings.model_fields

    unknown = [key for key in shared if key.removeprefix("QINGLIAN_").lower() not in common]

    assert {"QINGLIAN_KAFKA_BOOTSTRAP", "QINGLIAN_MONGO_URL", "QINGLIAN_HTTP_PORT"} <= shared
    assert unknown == [], f"ServiceSettings has no field for {unknown}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_compose_port_is_the_default_port_of_the_services_own_settings(name: str) -> None:
    assert _compose_port(name) == _default_http_port(name)


def test_no_two_services_share_a_port() -> None:
    ports = [_compose_port(name) for name in SERVICE_NAMES]

    assert len(set(ports)) == len(ports)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_listens_on_all_interfaces_inside_its_container(name: str) -> None:
    # Prometheus scrapes from another container: a loopback-only listener would be unreachable.
    assert _environment(_compose_service(name))["QINGLIAN_HTTP_HOST"] == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_healthcheck_probes_its_own_healthz(name: str) -> None:
    probe = _as_argv(_compose_service(name)["healthcheck"]["test"])

    assert probe[0] in ("CMD", "CMD-SHELL")
    assert f"http://127.0.0.1:{_compose_port(name)}/healthz" in " ".join(probe)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_waits_for_healthy_mongodb_and_for_kafkas_users_and_acls(name: str) -> None:
    depends_on = _compose_service(name)["depends_on"]

    assert depends_on["mongodb"]["condition"] == "service_healthy"
    # kafka-setup runs once Kafka is healthy, and exits once the users and ACLs are set.
    assert depends_on["kafka-setup"]["condition"] == "service_completed_successfully"
    assert _compose_service("kafka-setup")["depends_on"]["kafka"]["condition"] == "service_healthy"
    for store in DATA_STORES:
        assert "healthcheck" in _compose_service(store), f"{store} has no healthcheck to wait on"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_prometheus_scrapes_every_service_by_name_and_port(name: str) -> None:
    targets = _scrape_targets("qinglian")
    target = f"{name}:{_compose_port(name)}"

    assert target in targets, f"prometheus.yml does not scrape {target}"
    assert targets[target].get("service") == name


def test_every_prometheus_rule_file_exists_and_is_mounted_beside_the_config() -> None:
    rule_files = _load_yaml(PROMETHEUS_FILE)["rule_files"]
    mounts = _bind_mounts(_compose_service("prometheus"))

    assert mounts.get(PROMETHEUS_FILE.resolve()) == PROMETHEUS_CONFIG_IN_CONTAINER
    assert rule_files
    for rule_file in rule_files:
        on_host = PROMETHEUS_DIR / rule_file
        assert on_host.is_file(), f"{rule_file} is missing next to prometheus.yml"
        # Prometheus resolves rule_files relative to its config file.
        assert mounts.get(on_host.resolve()) == PROMETHEUS_CONFIG_IN_CONTAINER.parent / rule_file


def test_every_alert_has_a_severity_and_a_summary() -> None:
    rule_files = _load_yaml(PROMETHEUS_FILE)["rule_files"]
    alerts = [
        rule
        for rule_file in rule_files
        for group in _load_yaml(PROMETHEUS_DIR / rule_file)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]

    assert alerts
    for alert in alerts:
        assert alert["labels"]["severity"], alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]


def test_an_unknown_consumer_lag_is_watched_for_every_service() -> None:
    """absent() cannot range over services: the rule names each one, and a new service must
    be added to it."""
    (rule,) = [
        rule
        for group in _load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "QinglianConsumerLagUnknown"
    ]
    watched = re.findall(
        r'absent\(qinglian_consumer_lag\{job="qinglian", service="([a-z]+)"\}\)', rule["expr"]
    )

    assert sorted(watched) == SERVICE_NAMES


def test_kafka_runs_as_a_single_kraft_node_without_zookeeper() -> None:
    env = _environment(_compose_service("kafka"))
    roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}

    assert roles == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert not [text for text in _walk(_load_yaml(COMPOSE_FILE)) if "zookeeper" in text.lower()]


def test_every_port_published_to_the_host_is_bound_to_loopback() -> None:
    published = {
        name: _published_ports(service)
        for name, service in _compose_services().items()
        if service.get("ports")
    }

    assert published, "nothing is published; operators reach intake and reporting via the host"
    for name, ports in published.items():
        for host_ip, host_port in ports:
            assert host_ip == "127.0.0.1", f"{name} publishes {host_port} on {host_ip or 'all'}"


def test_kafka_and_mongodb_are_not_published_to_the_host() -> None:
    for store in DATA_STORES:
        assert _published_ports(_compose_service(store)) == []


def test_intake_in_production_reads_its_contact_key_from_a_container_secret() -> None:
    intake = _compose_service("intake")
    environment = _environment(intake)
    key_file = PurePosixPath(environment["QINGLIAN_CONTACT_KEY_FILE"])
    assert key_file.parent == PurePosixPath("/run/secrets")
    assert key_file.name in intake.get("secrets", [])
    declared = _load_yaml(COMPOSE_FILE)["secrets"][key_file.name]
    assert (DEPLOY_DIR / declared["file"]).parent == DEPLOY_DIR / "secrets"


def test_intake_refuses_to_start_in_production_without_a_contact_key() -> None:
    from pydantic import ValidationError

    from services.intake.settings import IntakeSettings

    with pytest.raises(ValidationError, match="QINGLIAN_CONTACT_KEY"):
        IntakeSettings(env="production", http_port=8101)
    key_file = Path("/run/secrets/contact_key")
    assert IntakeSettings(env="production", http_port=8101, contact_key_file=key_file)


# --- Secrets ------------------------------------------------------------------------------------


def _declared_secrets() -> dict[str, dict[str, Any]]:
    secrets: dict[str, dict[str, Any]] = _load_yaml(COMPOSE_FILE).get("secrets", {})
    return secrets


def _mounted_secrets(service: dict[str, Any]) -> set[str]:
    return {
        str(item["source"]) if isinstance(item, dict) else str(item)
        for item in service.get("secrets", [])
    }


def _secret_file_variables(service: dict[str, Any]) -> dict[str, str]:
    """Environment variable -> the secret it names, for every value under /run/secrets."""
    named = {}
    for key, value in _environment(service).items():
        path = PurePosixPath(value)
        if path.parent == SECRETS_IN_CONTAINER:
            named[key] = path.name
    return named


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_reads_each_credential_from_a_secret_it_mounts(name: str) -> None:
    service = _compose_service(name)
    fields = _own_settings_class(name).model_fields
    named = _secret_file_variables(service)
    mounted = _mounted_secrets(service)

    assert named, f"{name} reads no secret file"
    for key, secret in named.items():
        field = key.removeprefix("QINGLIAN_").lower()
        assert key.endswith("_FILE"), f"{key} holds a path: name it …_FILE"
        assert field in fields, f"{name} sets {key}, which its settings never read"
        assert Path in _annotation_types(fields[field].annotation), f"{field} is not a Path"
        assert secret in mounted, f"{name} reads /run/secrets/{secret} but does not mount it"
        assert secret in _declared_secrets(), f"secret {secret} is not declared"
    assert mounted <= set(named.values()), (
        f"{name} mounts secrets it never reads: {mounted - set(named.values())}"
    )


def _annotation_types(annotation: Any) -> set[Any]:
    return set(getattr(annotation, "__args__", ())) | {annotation}


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_starts_from_its_compose_environment_and_secrets(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings the service builds from exactly what compose gives it (the secret files
    stood in for) log in to Kafka and MongoDB."""
    from faststream.security import SASLScram512

    from services.common.broker import kafka_security

    for variable in list(os.environ):
        if variable.startswith("QINGLIAN_"):
            monkeypatch.delenv(variable)
    for key, value in _environment(_compose_service(name)).items():
        path = PurePosixPath(value)
        if path.parent == SECRETS_IN_CONTAINER:
            stand_in = tmp_path / path.name
            stand_in.write_text(f"{path.name}-stand-in-value\n", encoding="utf-8")
            value = str(stand_in)
        monkeypatch.setenv(key, value)

    settings = _own_settings_class(name)()

    assert settings.env == "production"
    security = kafka_security(settings)
    assert isinstance(security, SASLScram512)
    # Its own Kafka user, with its own password: no service can act as another.
    assert security.username == name
    assert security.password == f"kafka_{name}_password-stand-in-value"
    credentials = settings.mongo_credentials()
    assert credentials is not None
    assert [part.get_secret_value() for part in credentials] == [
        "mongo_username-stand-in-value",
        "mongo_password-stand-in-value",
    ]


def test_every_secret_is_a_file_in_the_secrets_folder_and_its_readme_says_how_to_create_it() -> (
    None
):
    readme = SECRETS_README.read_text(encoding="utf-8")
    declared = _declared_secrets()
    used = set().union(*(_mounted_secrets(s) for s in _compose_services().values()))

    assert declared
    assert set(declared) == used, "a secret is declared but mounted nowhere, or the reverse"
    for secret, spec in declared.items():
        assert set(spec) == {"file"}, f"secret {secret} must come from a file"
        assert (DEPLOY_DIR / spec["file"]).resolve() == SECRETS_DIR / secret
        assert f"`{secret}`" in readme, f"secrets/README.md does not describe {secret}"
        assert re.search(rf"> deploy/secrets/{re.escape(secret)}\b", readme), (
            f"secrets/README.md does not say how to create deploy/secrets/{secret}"
        )
    # The secrets stay out of the image's build context …
    assert "deploy/secrets" in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    # … and everything but the README and .gitignore out of git.
    ignored = (SECRETS_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert ignored[0] == "*"
    assert set(ignored[1:]) == {"!README.md", "!.gitignore"}


_PASSWORD_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|_KEY$|JAAS", re.IGNORECASE)


def test_no_password_is_written_in_the_compose_file() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for service_name, service in _compose_services().items():
        for key, value in _environment(service).items():
            if _PASSWORD_KEY.search(key) and key.endswith("_DIR"):  # kafka-setup's
                assert PurePosixPath(value) == SECRETS_IN_CONTAINER, f"{service_name}: {key}"
            elif _PASSWORD_KEY.search(key):
                assert key.endswith("_FILE"), f"{service_name}: {key} must name a file"
                assert PurePosixPath(value).parent == SECRETS_IN_CONTAINER, (
                    f"{service_name}: {key} must name a secret under /run/secrets"
                )
    # Credentials in a URL, a JAAS or SCRAM line, or key=value.
    for pattern in (
        r"://[^/\s:@]+:[^/\s@]+@",
        r"password[ \t]*[=:][ \t]*\S",
        r"ScramLoginModule|PlainLoginModule",
        r"SCRAM-SHA-\d+=\[",
    ):
        assert not re.search(pattern, text, re.IGNORECASE), f"compose file matches {pattern}"


# --- Kafka: SASL/SCRAM-SHA-512 ------------------------------------------------------------------


def _listeners(value: str) -> dict[str, tuple[str, str]]:
    """ "NAME://host:port,…" -> name -> (host, port)."""
    listeners = {}
    for listener in value.split(","):
        name, address = listener.strip().split("://")
        host, port = address.rsplit(":", 1)
        listeners[name] = (host, port)
    return listeners


def _kafka_environment() -> dict[str, str]:
    return _environment(_compose_service("kafka"))


def test_kafka_authenticates_every_client_with_scram_sha_512_on_a_sasl_plaintext_listener() -> None:
    env = _kafka_environment()
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    (controller,) = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")

    # Every listener needs a login: SCRAM-SHA-512 for clients …
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    for name in listeners:
        if name != controller:
            mechanisms = env[f"KAFKA_LISTENER_NAME_{name}_SASL_ENABLED_MECHANISMS"]
            assert mechanisms == "SCRAM-SHA-512", f"listener {name}"
    # … and PLAIN (as admin) on KRaft's controller listener, which stays inside the container.
    assert env[f"KAFKA_LISTENER_NAME_{controller}_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert env["KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL"] == "PLAIN"
    assert listeners[controller][0] == "localhost"
    assert controller not in advertised
    assert "KAFKA_SASL_ENABLED_MECHANISMS" not in env
    # The broker itself logs in on the SASL listener too.
    assert protocols[env["KAFKA_INTER_BROKER_LISTENER_NAME"]] == "SASL_PLAINTEXT"
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    for name in [*SERVICE_NAMES, "kafka-setup"]:
        service = _environment(_compose_service(name))
        host, port = service["QINGLIAN_KAFKA_BOOTSTRAP"].rsplit(":", 1)
        (listener,) = [key for key, value in advertised.items() if value == (host, port)]
        assert protocols[listener] == "SASL_PLAINTEXT"
        assert service["QINGLIAN_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


def test_kafka_denies_what_no_acl_allows_and_admin_is_its_only_super_user() -> None:
    env = _kafka_environment()

    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert env["KAFKA_SUPER_USERS"] == "User:admin"
    assert "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND" not in env


def _access_plan() -> Any:
    from services.common.kafka_access import access_plan
    from services.common.raw_senders import RAW_SENDERS_FILE, RawSenders

    return access_plan(RawSenders.from_file(RAW_SENDERS_FILE), group_prefix="qinglian-")


def test_kafka_setup_logs_in_as_admin_and_is_given_every_users_password() -> None:
    from services.common.kafka_setup import KafkaSetupSettings

    setup = _compose_service("kafka-setup")
    env = _environment(setup)
    fields = KafkaSetupSettings.model_fields

    assert _as_argv(setup["command"]) == ["python", "-m", "services.common.kafka_setup"]
    assert [key for key in env if key.removeprefix("QINGLIAN_").lower() not in fields] == []
    assert env["QINGLIAN_KAFKA_SASL_USERNAME"] == "admin"
    admin_password = PurePosixPath(env["QINGLIAN_KAFKA_SASL_PASSWORD_FILE"])
    assert admin_password == SECRETS_IN_CONTAINER / "kafka_admin_password"
    assert PurePosixPath(env["QINGLIAN_KAFKA_PASSWORDS_DIR"]) == SECRETS_IN_CONTAINER
    assert _mounted_secrets(setup) == {"kafka_admin_password"} | {
        f"kafka_{user}_password" for user in _access_plan().users
    }
    assert setup["restart"] == "no"


@pytest.mark.parametrize("name", [*SERVICE_NAMES, "redrive"])
def test_each_kafka_client_logs_in_as_a_user_of_its_own_that_kafka_setup_creates(
    name: str,
) -> None:
    env = _environment(_compose_service(name))
    password = PurePosixPath(env["QINGLIAN_KAFKA_SASL_PASSWORD_FILE"])

    assert env["QINGLIAN_KAFKA_SASL_USERNAME"] == name
    assert name in _access_plan().users
    assert password == SECRETS_IN_CONTAINER / f"kafka_{name}_password"
    assert password.name in _mounted_secrets(_compose_service("kafka-setup"))


def test_redrive_is_an_operators_command_that_up_never_starts() -> None:
    redrive = _compose_service("redrive")

    assert redrive["profiles"] == ["tools"]
    assert _as_argv(redrive["entrypoint"]) == ["python", "-m", "services.intake.redrive"]
    assert "command" not in redrive  # `docker compose run --rm redrive --dry-run …` adds them
    assert redrive["restart"] == "no"


def test_the_local_secure_kafka_has_the_security_production_has(tmp_path: Path) -> None:
    """runtime.sh's kafka-secure (deploy/local/kafka/secure.properties.in) and the compose
    file's Kafka agree on every security setting, listener names and addresses aside."""
    local = _properties_text(
        (DEPLOY_DIR / "local" / "kafka" / "secure.properties.in").read_text(encoding="utf-8")
    )
    production = {
        key: value
        for key, value in _rendered_kafka_environment().items()
        if key.startswith(("listener.name.", "sasl.", "authorizer.", "super.", "inter.broker"))
        or key == "listener.security.protocol.map"
    }
    jaas = {key for key in local if key.endswith(".sasl.jaas.config")}

    assert {key: local[key] for key in production} == production
    assert set(local) - set(production) - jaas == {"listeners", "advertised.listeners"}
    # The JAAS lines (with the admin password) are written by start.sh in production.
    assert jaas == {
        "listener.name.client.scram-sha-512.sasl.jaas.config",
        "listener.name.controller.plain.sasl.jaas.config",
    }
    start = KAFKA_START_SCRIPT.read_text(encoding="utf-8")
    for key in jaas:
        variable = "KAFKA_" + key.upper().replace("-", "___").replace(".", "_")
        assert f"export {variable}" in start


def _properties_text(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def _rendered_kafka_environment() -> dict[str, str]:
    """The kafka service's KAFKA_* environment as the image renders it into properties."""
    rendered = {}
    for name, value in _kafka_environment().items():
        if not name.startswith("KAFKA_"):
            continue
        key = name.removeprefix("KAFKA_").lower().replace("___", "-").replace("_", ".")
        rendered[key] = value
    return rendered


def test_production_and_the_local_runtime_run_one_kafka_version() -> None:
    image = _compose_service("kafka")["image"]
    runtime = (DEPLOY_DIR / "local" / "runtime.sh").read_text(encoding="utf-8")
    pom = (DEPLOY_DIR / "local" / "kafka" / "pom.xml").read_text(encoding="utf-8")
    local = re.search(r'^KAFKA_VERSION="([^"]+)"$', runtime, re.MULTILINE)
    fetched = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)

    assert local is not None
    assert fetched is not None
    assert image == f"apache/kafka:{local.group(1)}"
    assert fetched.group(1) == local.group(1)


def test_kafka_runs_its_start_script_and_the_healthcheck_logs_in() -> None:
    kafka = _compose_service("kafka")
    mounts = _bind_mounts(kafka)
    script_in_container = mounts.get(KAFKA_START_SCRIPT.resolve())
    probe = _as_argv(kafka["healthcheck"]["test"])

    assert script_in_container is not None, "kafka/start.sh is not mounted"
    assert str(script_in_container) in _as_argv(kafka["command"])
    assert "--command-config" in probe
    script = KAFKA_START_SCRIPT.read_text(encoding="utf-8")
    state = re.search(r"^STATE=\$\{QINGLIAN_KAFKA_STATE:-([^}]+)\}$", script, re.MULTILINE)
    assert state is not None, "start.sh no longer says where it keeps admin.properties"
    assert '"$STATE/admin.properties"' in script
    assert probe[probe.index("--command-config") + 1] == f"{state.group(1)}/admin.properties"


def _stand_in(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def _run_kafka_start(work: Path, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """kafka/start.sh with the compose file's kafka environment and the given secret files;
    kafka-storage.sh and the image's own start script are stand-ins recording how they ran."""
    secret_dir = work / "secrets"
    secret_dir.mkdir(exist_ok=True)
    for name, value in secrets.items():
        (secret_dir / name).write_text(value, encoding="utf-8")
    bin_dir = work / "bin"
    bin_dir.mkdir(exist_ok=True)
    data = work / "data"
    data.mkdir(exist_ok=True)
    _stand_in(
        bin_dir / "kafka-storage.sh",
        '#!/bin/bash\nprintf "%s\\n" "$@" > "$WORK/format.args"\n'
        'cp "$5" "$WORK/format.properties"\n'
        'touch "$KAFKA_LOG_DIRS/meta.properties"\n',
    )
    image_run = _stand_in(
        work / "run",
        '#!/bin/bash\nprintf "%s" "$KAFKA_LISTENER_NAME_CLIENT_SCRAM___SHA___512_SASL_JAAS_CONFIG"'
        ' > "$WORK/run.jaas"\n',
    )
    env = {
        **_kafka_environment(),
        "KAFKA_LOG_DIRS": str(data),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "WORK": str(work),
        "QINGLIAN_SECRETS_DIR": str(secret_dir),
        "QINGLIAN_KAFKA_BIN": str(bin_dir),
        "QINGLIAN_KAFKA_IMAGE_RUN": str(image_run),
        "QINGLIAN_KAFKA_STATE": str(work / "state"),
    }
    return subprocess.run(  # noqa: S603 (our own script, with stand-ins)
        ["/bin/bash", str(KAFKA_START_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _properties(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_kafka_creates_the_admin_user_from_its_secret_file_when_it_formats(
    tmp_path: Path,
) -> None:
    admin_password = "a" * 32
    env = _kafka_environment()
    secrets = {"kafka_admin_password": f"{admin_password}\n"}

    first = _run_kafka_start(tmp_path, secrets)

    assert first.returncode == 0, first.stderr
    args = (tmp_path / "format.args").read_text(encoding="utf-8").splitlines()
    assert args[:3] == ["format", "--cluster-id", env["CLUSTER_ID"]]
    scram = [args[i + 1] for i, arg in enumerate(args) if arg == "--add-scram"]
    # Every other user is set by kafka-setup, as admin.
    assert scram == [f"SCRAM-SHA-512=[name=admin,password={admin_password}]"]
    # The storage is formatted with the configuration the broker runs with.
    formatted = _properties(tmp_path / "format.properties")
    assert (
        formatted["listener.security.protocol.map"] == env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    )
    assert formatted["listener.name.client.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert formatted["controller.quorum.voters"] == env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert "qinglian.kafka.sasl.username" not in formatted
    jaas = formatted["listener.name.client.scram-sha-512.sasl.jaas.config"]
    assert f'username="admin" password="{admin_password}"' in jaas
    controller = formatted["listener.name.controller.plain.sasl.jaas.config"]
    assert f'user_admin="{admin_password}"' in controller
    assert (tmp_path / "run.jaas").read_text(encoding="utf-8") == jaas
    # The healthcheck's login, readable by the broker's user only; the format file is gone.
    admin = tmp_path / "state" / "admin.properties"
    assert _properties(admin)["sasl.mechanism"] == "SCRAM-SHA-512"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["admin.properties"]
    assert admin_password not in first.stdout + first.stderr

    (tmp_path / "format.args").unlink()
    again = _run_kafka_start(tmp_path, secrets)

    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "format.args").exists(), "a formatted volume was formatted again"


@pytest.mark.parametrize(
    "password", ["", "short-password", "with space in the middle", 'quote"d-password-value']
)
def test_kafka_refuses_a_password_its_configuration_cannot_carry(
    tmp_path: Path, password: str
) -> None:
    done = _run_kafka_start(tmp_path, {"kafka_admin_password": password})

    assert done.returncode != 0
    assert "kafka_admin_password" in done.stderr
    assert not (tmp_path / "format.args").exists()
    if password:
        assert password not in done.stdout + done.stderr


# --- MongoDB: authentication --------------------------------------------------------------------


def test_mongodb_requires_a_login_with_a_root_user_from_secret_files() -> None:
    mongodb = _compose_service("mongodb")
    env = _environment(mongodb)

    assert "MONGO_INITDB_ROOT_USERNAME" not in env
    assert "MONGO_INITDB_ROOT_PASSWORD" not in env
    for variable in ("MONGO_INITDB_ROOT_USERNAME_FILE", "MONGO_INITDB_ROOT_PASSWORD_FILE"):
        path = PurePosixPath(env[variable])
        assert path.parent == SECRETS_IN_CONTAINER
        assert path.name in _mounted_secrets(mongodb)


def test_mongodb_creates_the_services_user_from_the_secrets_the_services_log_in_with() -> None:
    mongodb = _compose_service("mongodb")
    init_dirs = [
        host
        for host, target in _bind_mounts(mongodb).items()
        if target == MONGODB_INIT_IN_CONTAINER
    ]
    assert len(init_dirs) == 1, "no init scripts mounted at /docker-entrypoint-initdb.d"
    scripts = sorted(init_dirs[0].glob("*.js"))
    assert scripts
    text = "\n".join(script.read_text(encoding="utf-8") for script in scripts)

    assert "createUser(" in text
    for name in SERVICE_NAMES:
        env = _environment(_compose_service(name))
        assert "@" not in env["QINGLIAN_MONGO_URL"], "credentials belong in secret files"
        for variable in ("QINGLIAN_MONGO_USERNAME_FILE", "QINGLIAN_MONGO_PASSWORD_FILE"):
            secret = PurePosixPath(env[variable]).name
            assert secret in _mounted_secrets(mongodb), f"mongodb cannot read {secret}"
            assert f'secret("{secret}")' in text, f"the init script does not use {secret}"


# --- Restart policies ---------------------------------------------------------------------------


def test_every_container_restarts_unless_stopped_and_services_stop_gracefully() -> None:
    for name, service in _compose_services().items():
        if name == "kafka-setup" or service.get("profiles"):  # run once, or by hand
            continue
        assert service.get("restart") in ("unless-stopped", "always"), name
    for name in SERVICE_NAMES:
        grace = str(_compose_service(name)["stop_grace_period"])
        # uvicorn and the broker each wait up to 30 s after SIGTERM (services/common/service.py).
        assert grace.endswith("s"), name
        assert int(grace.removesuffix("s")) > 30, name


# --- Grafana ------------------------------------------------------------------------------------


def _grafana_datasources() -> list[dict[str, Any]]:
    return [
        source
        for path in sorted(GRAFANA_DATASOURCES_DIR.glob("*.yml"))
        for source in _load_yaml(path)["datasources"]
    ]


def _dashboards() -> dict[Path, dict[str, Any]]:
    return {
        path: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(GRAFANA_DASHBOARDS_DIR.glob("*.json"))
    }


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def _dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression the dashboard sends: panel targets and variable queries."""
    queries = [
        target["expr"]
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if variable.get("type") == "query" and query:
            function = re.fullmatch(
                r"\s*(?:label_values|query_result)\((.*?)(?:,\s*\w+)?\)\s*", query
            )
            queries.append(function.group(1) if function else query)
    return queries


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboards() -> None:
    grafana = _compose_service("grafana")
    mounts = _bind_mounts(grafana)
    (datasource,) = _grafana_datasources()
    (providers_file,) = sorted(GRAFANA_DASHBOARD_PROVIDERS_DIR.glob("*.yml"))
    (provider,) = _load_yaml(providers_file)["providers"]
    prometheus_port = _published_ports(_compose_service("prometheus"))[0][1]

    assert mounts.get((GRAFANA_DIR / "provisioning").resolve()) == GRAFANA_PROVISIONING_IN_CONTAINER
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    assert (
        datasource["jsonData"]["timeInterval"]
        == _load_yaml(PROMETHEUS_FILE)["global"]["scrape_interval"]
    )
    assert mounts.get(GRAFANA_DASHBOARDS_DIR.resolve()) == PurePosixPath(
        provider["options"]["path"]
    )
    home = PurePosixPath(_environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (GRAFANA_DASHBOARDS_DIR / home.relative_to(provider["options"]["path"])).is_file()
    assert _dashboards(), "no dashboard in deploy/grafana/dashboards"
    for path, dashboard in _dashboards().items():
        assert dashboard["uid"], path.name
        assert dashboard["title"], path.name
        assert _dashboard_queries(dashboard), f"{path.name} queries nothing"
        for panel in _panels(dashboard["panels"]):
            for source in [
                panel.get("datasource"),
                *(t.get("datasource") for t in panel.get("targets", [])),
            ]:
                if source is not None:
                    assert source["uid"] == datasource["uid"], f"{path.name}: {panel['title']}"


def test_grafanas_admin_password_comes_from_a_secret_file() -> None:
    grafana = _compose_service("grafana")
    env = _environment(grafana)
    password = PurePosixPath(env["GF_SECURITY_ADMIN_PASSWORD__FILE"])

    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert password.parent == SECRETS_IN_CONTAINER
    assert password.name in _mounted_secrets(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


# What a metric is exposed as, by the prometheus_client class that declares it.
_EXPOSED_AS = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("", "_sum", "_count"),
}
_PROMETHEUS_OWN = {"up": set[str]()}
_BY_NAME = {"counter", "gauge", "metric"}
"""services.common.metrics' functions, which create a metric metrics.toml declares (``metric``:
as a field of a Metrics dataclass)."""
"""Series Prometheus writes itself for every target."""
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


def _declared_metrics(path: Path, prefix: str) -> Iterator[tuple[str, str, set[str]]]:
    """(class, name, label names) of each prometheus_client metric declared in ``path``;
    f-string names are rendered with ``metrics_prefix`` = ``prefix``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    named: dict[str, ast.expr] = {
        node.targets[0].id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    }

    def text(node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Name) and node.id in named:
            node = named[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                if isinstance(part, ast.Constant):
                    parts.append(str(part.value))
                elif (
                    isinstance(part, ast.FormattedValue)
                    and isinstance(part.value, ast.Name)
                    and part.value.id == "metrics_prefix"
                ):
                    parts.append(prefix)
                else:
                    return None
            return "".join(parts)
        return None

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        kind = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if kind in _BY_NAME and (name := text(node.args[0] if node.args else None)) is not None:
            declared = catalogue().metric[name]
            yield declared.kind.capitalize(), name, set(declared.labels)
            continue
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        # collections.Counter takes no documentation: a metric always has one.
        if kind not in _EXPOSED_AS or len(node.args) + len(keywords) < 2:
            continue
        name = text(node.args[0] if node.args else keywords.get("name"))
        if name is None:
            continue
        labels_node = node.args[2] if len(node.args) > 2 else keywords.get("labelnames")
        labels = {
            element.value
            for element in getattr(labels_node, "elts", [])
            if isinstance(element, ast.Constant) and isinstance(element.value, str)
        }
        yield kind, name, labels


def _exported_series() -> dict[str, set[str]]:
    """Series name -> label names, of every metric the services export: their own (found in
    services/, made by name from metrics.toml or declared in code) and FastStream's, with the
    prefix make_broker leaves at its default."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware
    from faststream.prometheus import container

    broker_source = (REPO_ROOT / "services" / "common" / "broker.py").read_text(encoding="utf-8")
    assert "metrics_prefix" not in broker_source, "update this test for the new prefix"
    prefix = inspect.signature(KafkaPrometheusMiddleware).parameters["metrics_prefix"].default
    sources = [(path, "") for path in sorted((REPO_ROOT / "services").rglob("*.py"))]
    sources.append((Path(container.__file__), prefix))

    declared = [
        metric for path, path_prefix in sources for metric in _declared_metrics(path, path_prefix)
    ]
    series: dict[str, set[str]] = {}
    for kind, name, labels in declared:
        base = name.removesuffix("_total") if kind == "Counter" else name
        for suffix in _EXPOSED_AS[kind]:
            series[base + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


def _promql_metric_names(expression: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in _PROMQL_WORDS:
            continue  # a function or a keyword
        names.add(match.group())
    return names


def _promql_labels(expression: str) -> tuple[dict[str, set[str]], set[str]]:
    """Label names matched per metric selector, and label names grouped by."""
    selected: dict[str, set[str]] = {}
    for metric, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", expression):
        labels = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers)
        selected.setdefault(metric, set()).update(labels)
    grouped = {
        label.strip()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expression)
        for label in clause.split(",")
        if label.strip()
    }
    return selected, grouped


def test_promql_metric_names_are_found_in_expressions() -> None:
    expression = (
        'histogram_quantile(0.95, sum by (service, le) (rate(x_bucket{job="a", s=~"$s"}'
        "[$__rate_interval]))) / on (job) group_left up + sum without (le) (y) offset 5m"
    )

    assert _promql_metric_names(expression) == {"x_bucket", "up", "y"}
    assert _promql_labels(expression) == ({"x_bucket": {"job", "s"}}, {"service", "le"})


def test_every_metric_metrics_toml_declares_is_created_by_a_service() -> None:
    created = {
        name
        for path in (REPO_ROOT / "services").rglob("*.py")
        for _, name, _ in _declared_metrics(path, "")
    }
    assert set(catalogue().metric) <= created, "declared, exported by no service"


def test_every_metric_the_dashboards_query_is_one_the_services_export() -> None:
    exported = _exported_series() | _PROMETHEUS_OWN
    target_labels = {"job", "instance"} | {
        label for labels in _scrape_targets("qinglian").values() for label in labels
    }

    for path, dashboard in _dashboards().items():
        for expression in _dashboard_queries(dashboard):
            metrics = _promql_metric_names(expression)
            unknown = metrics - set(exported)
            assert not unknown, f"{path.name}: {expression!r} reads {unknown}, exported nowhere"
            selected, grouped = _promql_labels(expression)
            for metric, labels in selected.items():
                missing = labels - exported[metric] - target_labels
                assert not missing, f"{path.name}: {metric} has no label {missing}"
            known = set().union(*(exported[metric] for metric in metrics)) | target_labels
            assert grouped <= known, f"{path.name}: {expression!r} groups by {grouped - known}"


def test_the_dashboards_show_the_business_and_the_service_metrics() -> None:
    queried = {
        metric
        for dashboard in _dashboards().values()
        for expression in _dashboard_queries(dashboard)
        for metric in _promql_metric_names(expression)
    }
    business = {
        "qinglian_cases",
        "qinglian_cases_opened_total",
        "qinglian_events_total",
        "qinglian_decisions_total",
    }
    service = {
        "up",
        "qinglian_consumer_lag",
        "qinglian_poison_messages_total",
        "faststream_received_processed_messages_total",
    }

    assert business <= queried, f"no panel shows {business - queried}"
    assert service <= queried, f"no panel shows {service - queried}"
    assert any(metric.startswith("faststream_") for metric in queried)
