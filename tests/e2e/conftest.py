"""The whole system: the four services as real processes against the real broker and store."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from schemas.catalogue import BY_TYPE
from tests.conftest import InfraSettings

SERVICES = {"intake": 8201, "router": 8202, "escalation": 8203, "reporting": 8204}
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class System:
    urls: dict[str, str]
    api_key: str
    """A key of source system "portal" that may send every event type."""
    report_token: str
    """A conduct office (行风办) token for reporting."""


def _wait_healthy(name: str, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited during start:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{name} not healthy within 60 s:\n{log.read_text(errors='replace')[-4000:]}")


def _created(env: dict[str, str], module: str, *options: str) -> str:
    """A key or token made with its command-line tool, as operators make them."""
    created = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", module, "create", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return created.stdout.strip()


# Module scope: the services stop when the module's tests end, so their consumers (e.g.
# intake on the raw topic) never compete with the integration tests' own.
@pytest.fixture(scope="module")
def system(infra: InfraSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_id = os.urandom(4).hex()
    logs = tmp_path_factory.mktemp("service-logs")
    env = {
        **os.environ,
        "QINGLIAN_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "QINGLIAN_MONGO_URL": infra.mongo_url,
        "QINGLIAN_MONGO_DB": f"e2e_{run_id}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"e2e-{run_id}-",
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in SERVICES.items()}
    try:
        for name, port in SERVICES.items():
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                    [sys.executable, "-m", f"services.{name}"],
                    cwd=ROOT,
                    env={**env, "QINGLIAN_HTTP_PORT": str(port)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        for name, process in processes.items():
            _wait_healthy(name, urls[name], process, logs / f"{name}.log")
        api_key = _created(
            env, "services.intake.keys", "--source", "portal", "--scopes", ",".join(BY_TYPE)
        )
        report_token = _created(env, "services.reporting.tokens", "--role", "conduct_office")
        yield System(urls=urls, api_key=api_key, report_token=report_token)
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        stopped_badly = []
        for name, process in processes.items():
            try:
                # uvicorn re-raises SIGTERM once its shutdown is complete.
                process.wait(timeout=40)
                output = (logs / f"{name}.log").read_text(errors="replace")
                if process.returncode not in (0, -signal.SIGTERM) or (
                    "Application shutdown complete" not in output
                ):
                    stopped_badly.append(f"{name} did not shut down gracefully")
            except subprocess.TimeoutExpired:
                process.kill()
                stopped_badly.append(f"{name} did not stop within 40 s of SIGTERM")
        if stopped_badly:  # a graceful shutdown is part of what is tested
            pytest.fail("; ".join(stopped_badly) + f" (logs in {logs})")
