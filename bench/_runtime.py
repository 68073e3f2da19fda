"""Helpers shared by bench/system_load.py and bench/run_all.py (not a benchmark itself).

A Kafka and FerretDB (on PostgreSQL) of a benchmark's own (deploy/local/runtime.sh on its own
folder and ports), the Qinglian services as subprocesses on them, CPU time from /proc, and a
deadline for a whole run. Nothing here imports from tests/.
"""

import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def clean_env() -> dict[str, str]:
    """This environment without any QINGLIAN_ setting, so nothing points at another system."""
    return {name: value for name, value in os.environ.items() if not name.startswith("QINGLIAN_")}


@dataclass(frozen=True)
class Runtime:
    """A Kafka and a FerretDB on PostgreSQL run by deploy/local/runtime.sh in ``local_dir`` on
    these ports, all on 127.0.0.1."""

    local_dir: Path
    kafka_port: int
    kafka_controller_port: int
    ferretdb_port: int
    ferretdb_debug_port: int
    postgres_port: int

    @property
    def env(self) -> dict[str, str]:
        return {
            "QINGLIAN_LOCAL_DIR": str(self.local_dir),
            "QINGLIAN_KAFKA_PORT": str(self.kafka_port),
            "QINGLIAN_KAFKA_CONTROLLER_PORT": str(self.kafka_controller_port),
            "QINGLIAN_FERRETDB_PORT": str(self.ferretdb_port),
            "QINGLIAN_FERRETDB_DEBUG_PORT": str(self.ferretdb_debug_port),
            "QINGLIAN_POSTGRES_PORT": str(self.postgres_port),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb_port}/"

    def service_env(self, *, db: str, group_prefix: str) -> dict[str, str]:
        """What a service or command needs to use this runtime (on top of clean_env())."""
        return {
            "QINGLIAN_KAFKA_BOOTSTRAP": self.bootstrap,
            "QINGLIAN_MONGO_URL": self.mongo_url,
            "QINGLIAN_MONGO_DB": db,
            "QINGLIAN_KAFKA_GROUP_PREFIX": group_prefix,
            "QINGLIAN_HTTP_HOST": "127.0.0.1",
        }

    def command(self, command: str, *, timeout: float) -> None:
        """runtime.sh COMMAND on this runtime's folder and ports; its output to stderr."""
        subprocess.run(  # noqa: S603 (our own script)
            [str(ROOT / "deploy" / "local" / "runtime.sh"), command],
            env=clean_env() | self.env,
            stdout=sys.stderr,
            stderr=sys.stderr,
            check=True,
            timeout=max(1.0, timeout),
        )

    def start_fresh(self, deadline: "Deadline", *, attempts: int = 3) -> None:
        """Wipe and start; again after a pause if a port was held for a moment (the ports may
        lie in Linux's ephemeral range, where an outgoing connection can take one)."""
        for attempt in range(1, attempts + 1):
            self.command("wipe", timeout=deadline.left())
            try:
                self.command("start", timeout=deadline.left())
                return
            except subprocess.CalledProcessError:
                if attempt == attempts:
                    raise
                print("the runtime did not start; trying again in 20 s", file=sys.stderr)
                time.sleep(20)

    def stop(self) -> None:
        try:
            self.command("stop", timeout=150)
        except subprocess.SubprocessError as error:
            print(f"could not stop the benchmark runtime: {error}", file=sys.stderr)

    def pid(self, name: str) -> int | None:
        try:
            return int((self.local_dir / "run" / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"


SYSTEM_RUNTIME = Runtime(
    local_dir=ROOT / ".local" / "bench-system",
    kafka_port=49392,
    kafka_controller_port=49393,
    ferretdb_port=47328,
    ferretdb_debug_port=48398,
    postgres_port=45332,
)
"""The runtime of bench/system_load.py, also lent by bench/run_all.py to scripts that need a
runtime started for them (one script at a time)."""


class Deadline:
    """A whole run's time limit; every phase gets what is left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the benchmark did not finish within {self.seconds:.0f} s")
        return left

    def run(self, coroutine: Awaitable[T]) -> T:
        async def bounded() -> T:
            return await asyncio.wait_for(coroutine, self.left())

        return asyncio.run(bounded())


# --- CPU ------------------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far, from /proc (Linux); None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def runqueue_wait_seconds(pid: int | None) -> float | None:
    """Time the process's threads spent runnable but waiting for a core, from
    /proc/PID/task/*/schedstat (Linux; threads that already exited are not counted)."""
    if pid is None:
        return None
    waited = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                waited += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    except OSError:
        return None
    return waited / 1e9


@dataclass
class CpuWindow:
    """CPU used by named processes between begin() and end(), and time they waited for a
    core. A process that exits in between is reported as of its last reading."""

    pids: dict[str, int | None]
    start: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    last: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    began_at: float = 0.0

    def _read(self) -> dict[str, tuple[float | None, float | None]]:
        now: dict[str, tuple[float | None, float | None]] = {}
        for name, pid in self.pids.items():
            if pid == os.getpid():
                now[name] = (time.process_time(), runqueue_wait_seconds(pid))
            else:
                now[name] = (cpu_seconds(pid), runqueue_wait_seconds(pid))
        return now

    def begin(self) -> None:
        self.start = self._read()
        self.last = dict(self.start)
        self.began_at = time.monotonic()

    def sample(self) -> None:
        """Read again (call now and then, so a process that exits keeps its last reading)."""
        for name, (cpu, wait) in self._read().items():
            if cpu is not None:
                self.last[name] = (cpu, wait)

    def end(self, events: int) -> dict[str, Any]:
        self.sample()
        seconds = time.monotonic() - self.began_at
        result: dict[str, Any] = {"window_s": round(seconds, 2), "events": events}
        per_process: dict[str, Any] = {}
        total = 0.0
        for name, (cpu, wait) in self.last.items():
            cpu_began, wait_began = self.start.get(name, (None, None))
            if cpu is None or cpu_began is None:
                continue
            used = cpu - cpu_began
            total += used
            entry = {
                "cpu_s": round(used, 2),
                "cores_busy": round(used / max(seconds, 1e-9), 3),
                "cpu_ms_per_event": round(used * 1000 / max(events, 1), 2),
            }
            if wait is not None and wait_began is not None:
                entry["waited_for_a_core_s"] = round(wait - wait_began, 2)
            per_process[name] = entry
        result["processes"] = per_process
        result["total_cpu_s"] = round(total, 2)
        result["total_cpu_ms_per_event"] = round(total * 1000 / max(events, 1), 2)
        return result


# --- Services -------------------------------------------------------------------------------


def free_port(ports: range) -> int:
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


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
    name: str, *, env: dict[str, str], port: int, log_dir: Path, patience: float = 90.0
) -> Service:
    """``python -m services.NAME`` with ``env`` on ``port``; returns once /healthz says ok."""
    log = log_dir / f"bench-{name}-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            env=clean_env() | env | {"QINGLIAN_HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    service = Service(name, process.pid, port, f"http://127.0.0.1:{port}", log, process)
    deadline = time.monotonic() + patience
    try:
        while True:
            try:
                if httpx.get(f"{service.url}/healthz", timeout=3).status_code == 200:
                    return service
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy; see {log}")
            time.sleep(0.3)
    except BaseException:  # an interrupt too: no service is left behind
        stop_service(service)
        raise


def stop_service(service: Service, *, patience: float = 45.0) -> None:
    """SIGTERM (graceful: in-flight records finish and commit), SIGKILL after ``patience``."""
    if service.process.poll() is not None:
        return
    service.process.terminate()
    try:
        service.process.wait(timeout=patience)
    except subprocess.TimeoutExpired:
        service.process.kill()
        service.process.wait(timeout=10)


@contextmanager
def services(
    names: tuple[str, ...], *, env: dict[str, str], ports: range, log_dir: Path
) -> Iterator[dict[str, Service]]:
    """Start the services in order; stop them all (in reverse) on exit."""
    started: dict[str, Service] = {}
    try:
        for name in names:
            started[name] = start_service(name, env=env, port=free_port(ports), log_dir=log_dir)
        yield started
    finally:
        for service in reversed(started.values()):
            stop_service(service)


# --- Results --------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    """p50, p90, p99 and max in milliseconds (nearest rank), and the count."""
    if not seconds:
        return {"count": 0}
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
        "p90_ms": round(percentile(seconds, 0.90) * 1000, 1),
        "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def machine(load_at_start: list[float]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
    }


def tag() -> str:
    return uuid.uuid4().hex[:8]
