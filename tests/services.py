"""The services as real processes (`python -m services.<name>`), for the tests that need the
whole system: started against the real broker and store, waited on until healthy, stopped
gracefully. Keys and tokens are made with the operators' command-line tools."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def wait_healthy(
    name: str, url: str, process: subprocess.Popen[bytes], log: Path, *, within: float = 60
) -> None:
    """Wait until ``url``/healthz answers 200; fail with the log if it exits or never does."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited during start:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{name} not healthy within {within} s:\n{log.read_text(errors='replace')[-4000:]}")


def created(env: dict[str, str], module: str, *options: str) -> str:
    """A key or token made with its command-line tool, as operators make them."""
    made = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", module, "create", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return made.stdout.strip()


def launch(
    name: str, port: int, env: dict[str, str], log: Path, *, append: bool = False
) -> subprocess.Popen[bytes]:
    """``python -m services.<name>`` on ``port`` with ``env``, its output in ``log``."""
    with log.open("ab" if append else "wb") as out:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            env={**env, "QINGLIAN_HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def running_services(
    ports: dict[str, int], env: dict[str, str], logs: Path
) -> Iterator[dict[str, str]]:
    """Start ``python -m services.<name>`` on each port with ``env``, output in
    ``logs``/<name>.log; yields name -> base URL once every one is healthy. On the way out each
    gets SIGTERM and must shut down gracefully, else the test fails."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        for name, port in ports.items():
            processes[name] = launch(name, port, env, logs / f"{name}.log")
        for name, process in processes.items():
            wait_healthy(name, urls[name], process, logs / f"{name}.log")
        yield urls
    finally:
        stop_gracefully(processes, logs)


def stop_gracefully(processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
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
