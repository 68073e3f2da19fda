"""What operators rely on in deploy/: the compose file, the image and the Prometheus config.

Nothing here starts a container; the files are parsed and checked against the code they run.
"""

from __future__ import annotations

import importlib
import inspect
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from services.common.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "docker-compose.yml"
PROMETHEUS_DIR = DEPLOY_DIR / "prometheus"
PROMETHEUS_FILE = PROMETHEUS_DIR / "prometheus.yml"
# Where the prom/prometheus image reads its configuration by default.
PROMETHEUS_CONFIG_IN_CONTAINER = PurePosixPath("/etc/prometheus/prometheus.yml")
DATA_STORES = ("kafka", "mongodb")


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
def test_every_service_waits_for_healthy_kafka_and_mongodb(name: str) -> None:
    depends_on = _compose_service(name)["depends_on"]

    for store in DATA_STORES:
        assert depends_on[store]["condition"] == "service_healthy"
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
