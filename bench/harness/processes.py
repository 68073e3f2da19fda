"""Services as subprocesses, their CPU time from /proc (Linux), and their Prometheus metrics."""

import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.harness.runtime import ROOT, clean_env, free_port

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Service:
    name: str
    pid: int
    port: int
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None


def start_service(
    name: str,
    *,
    env: dict[str, str],
    port: int,
    log_dir: Path,
    module: str | None = None,
    health: str = "/healthz",
    patience: float = 90.0,
) -> Service:
    """``python -m services.NAME`` (or ``module``) with ``env`` on ``port`` (as
    QINGLIAN_HTTP_PORT); returns once ``health`` answers 200."""
    log = log_dir / f"bench-{name}-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            [sys.executable, "-m", module or f"services.{name}"],
            cwd=ROOT,
            env=clean_env() | env | {"QINGLIAN_HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = Service(name, process.pid, port, f"http://127.0.0.1:{port}", log, process)
    give_up = time.monotonic() + patience
    try:
        while process.poll() is None and time.monotonic() < give_up:
            try:
                if httpx.get(f"{service.url}{health}", timeout=3).status_code == 200:
                    return service
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not become healthy; see {log}")
    except BaseException:  # an interrupt too: no service is left behind
        stop_service(service)
        raise


def stop_service(service: Service, *, patience: float = 45.0) -> None:
    """SIGTERM (graceful: in-flight records finish and commit), SIGKILL after ``patience``."""
    stop_process(service.process, patience=patience)


def stop_process(process: subprocess.Popen[bytes], *, patience: float = 45.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def running(name: str, *, ports: range, **options: Any) -> Iterator[Service]:
    """start_service(name, **options) on the first free port of ``ports``; stopped on exit."""
    service = start_service(name, port=free_port(ports), **options)
    try:
        yield service
    finally:
        stop_service(service)


@contextmanager
def services(
    names: tuple[str, ...], *, env: dict[str, str], ports: range, log_dir: Path
) -> Iterator[dict[str, Service]]:
    """Start the services in order; stop them all (in reverse) on exit."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(running(name, env=env, ports=ports, log_dir=log_dir))
            for name in names
        }


def command(module: str, *args: str, env: dict[str, str], timeout: float = 60.0) -> str:
    """``python -m MODULE ARGS`` with ``env`` (a service's command: keys, tokens); its output."""
    return subprocess.run(  # noqa: S603 (our own interpreter and modules)
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=clean_env() | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout.strip()


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far; None if unknown (it exited)."""
    if pid is None:
        return None
    if pid == os.getpid():
        return time.process_time()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def runqueue_wait_seconds(pid: int | None) -> float | None:
    """Time the process's threads (those alive) spent runnable, waiting for a core."""
    if pid is None:
        return None
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    waited = 0
    for task in tasks:
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return waited / 1e9


Reading = tuple[float | None, float | None]  # CPU seconds, seconds waited for a core


@dataclass
class CpuWindow:
    """CPU used by named processes between begin() and end(), and time they waited for a
    core. A process that exits in between is reported as of its last reading."""

    pids: dict[str, int | None]
    start: dict[str, Reading] = field(default_factory=dict)
    last: dict[str, Reading] = field(default_factory=dict)
    began_at: float = 0.0

    def _read(self) -> dict[str, Reading]:
        return {name: (cpu_seconds(p), runqueue_wait_seconds(p)) for name, p in self.pids.items()}

    def begin(self) -> None:
        self.start = self._read()
        self.last = dict(self.start)
        self.began_at = time.monotonic()

    def sample(self) -> None:
        """Read again (call now and then, so a process that exits keeps its last reading)."""
        self.last |= {name: read for name, read in self._read().items() if read[0] is not None}

    def used(self) -> dict[str, float]:
        """CPU seconds per process so far."""
        self.sample()
        return {
            name: cpu - began
            for name, (cpu, _) in self.last.items()
            if cpu is not None and (began := self.start.get(name, (None, None))[0]) is not None
        }

    def end(self, events: int) -> dict[str, Any]:
        used, seconds = self.used(), time.monotonic() - self.began_at
        per_process: dict[str, Any] = {}
        for name, cpu in used.items():
            per_process[name] = {
                "cpu_s": round(cpu, 2),
                "cores_busy": round(cpu / max(seconds, 1e-9), 3),
                "cpu_ms_per_event": round(cpu * 1000 / max(events, 1), 2),
            }
            wait, wait_began = self.last[name][1], self.start[name][1]
            if wait is not None and wait_began is not None:
                per_process[name]["waited_for_a_core_s"] = round(wait - wait_began, 2)
        total = sum(used.values())
        return {
            "window_s": round(seconds, 2),
            "events": events,
            "processes": per_process,
            "total_cpu_s": round(total, 2),
            "total_cpu_ms_per_event": round(total * 1000 / max(events, 1), 2),
        }


Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient, url: str) -> Metrics:
    families = text_string_to_metric_families((await client.get(url, timeout=5)).text)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }


def total(metrics: Metrics, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in metrics.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def by_label(metrics: Metrics, name: str, label: str) -> dict[str, float]:
    values: dict[str, float] = defaultdict(float)
    for (sample, sample_labels), value in metrics.items():
        if sample == name:
            values[dict(sample_labels).get(label, "")] += value
    return values
