"""A Kafka and FerretDB (on PostgreSQL) of a benchmark's own: deploy/local/runtime.sh on its own
folder under .local and its own ports on 127.0.0.1; and a deadline for a whole run."""

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
# Moves runtime ports up by twice this, service ports by ten times this (two people, one machine)
PORT_SHIFT = int(os.environ.get("QINGLIAN_BENCH_PORT_SHIFT", "0"))


def clean_env() -> dict[str, str]:
    """This environment without any QINGLIAN_ setting, so nothing points at another system
    (but the benchmarks' port shift, which run_all's scripts keep)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("QINGLIAN_") or name == "QINGLIAN_BENCH_PORT_SHIFT"
    }


def tag() -> str:
    return uuid.uuid4().hex[:8]


def is_free(port: int) -> bool:
    """Whether nothing listens on, or holds, 127.0.0.1:``port``."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(ports: range) -> int:
    """The first free port of ``ports`` (moved up by 10 × PORT_SHIFT)."""
    for port in range(ports.start + 10 * PORT_SHIFT, ports.stop + 10 * PORT_SHIFT):
        if is_free(port):
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


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


@dataclass(frozen=True)
class Runtime:
    """runtime.sh in .local/``folder``: Kafka on ``kafka_port`` (its controller on the next),
    FerretDB on ``ferretdb_port`` (debug listener: ``ferretdb_debug_port``), its PostgreSQL."""

    folder: str
    kafka_port: int
    ferretdb_port: int
    ferretdb_debug_port: int
    postgres_port: int

    @classmethod
    def numbered(cls, folder: str, number: int) -> "Runtime":
        """Benchmark runtime ``number`` (0-9). Its ports lie below Linux's ephemeral range
        (32768 up), where an outgoing connection could hold one as the runtime starts, and
        move up by 2 × PORT_SHIFT (Kafka's controller takes the port after Kafka's)."""
        kafka = 30_000 + 20 * number + 2 * PORT_SHIFT
        return cls(folder, kafka, kafka + 500, kafka + 1000, kafka + 1500)

    @property
    def local_dir(self) -> Path:
        return ROOT / ".local" / self.folder

    @property
    def env(self) -> dict[str, str]:
        return {
            "QINGLIAN_LOCAL_DIR": str(self.local_dir),
            "QINGLIAN_KAFKA_PORT": str(self.kafka_port),
            "QINGLIAN_KAFKA_CONTROLLER_PORT": str(self.kafka_port + 1),
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

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"

    def pid(self, name: str) -> int | None:
        return pid_in(self.local_dir / "run" / f"{name}.pid")

    @asynccontextmanager
    async def database(self, name: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
        """A database on this runtime's FerretDB; the client closed on exit."""
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            self.mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        try:
            yield client[name]
        finally:
            await client.close()

    def service_env(self, *, db: str, group_prefix: str | None = None) -> dict[str, str]:
        """What a service or command needs to use this runtime (on top of clean_env())."""
        return {
            "QINGLIAN_KAFKA_BOOTSTRAP": self.bootstrap,
            "QINGLIAN_MONGO_URL": self.mongo_url,
            "QINGLIAN_MONGO_DB": db,
            "QINGLIAN_KAFKA_GROUP_PREFIX": group_prefix or f"bench-{tag()}-",
            "QINGLIAN_HTTP_HOST": "127.0.0.1",
        }

    def shifted_to_free(self, *, step: int = 10, tries: int = 20) -> "Runtime":
        """This runtime, or the first one ``step``, 2 × ``step``, … ports above all free."""
        ports = (self.kafka_port, self.ferretdb_port, self.ferretdb_debug_port, self.postgres_port)
        for n in range(tries):
            moved = Runtime(self.folder, *(port + n * step for port in ports))
            if all(map(is_free, (moved.kafka_port + 1, *(port + n * step for port in ports)))):
                return moved
        raise RuntimeError("no free set of ports for the benchmark runtime")

    def command(self, *args: str, timeout: float) -> None:
        """runtime.sh ARGS on this runtime's folder and ports; its output to stderr."""
        subprocess.run(  # noqa: S603 (our own script)
            [str(ROOT / "deploy" / "local" / "runtime.sh"), *args],
            env=clean_env() | self.env,
            stdout=sys.stderr,
            stderr=sys.stderr,
            check=True,
            timeout=max(1.0, timeout),
        )

    def start_fresh(self, deadline: Deadline, *servers: str, attempts: int = 3) -> None:
        """Wipe and start (``servers``: only those); again after a pause if a port was held for
        a moment (a port in Linux's ephemeral range can be taken by an outgoing connection)."""
        for attempt in range(1, attempts + 1):
            self.command("wipe", timeout=deadline.left())
            try:
                self.command("start", *servers, timeout=deadline.left())
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


def pid_in(pid_file: Path) -> int | None:
    """The pid runtime.sh wrote (``PID START_TIME``, deploy/local/lib.sh), if any."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def servers_running(local_dir: Path) -> list[str]:
    """Servers running from a runtime folder (live pid files): another run is using it."""
    return [
        pid_file.stem
        for pid_file in sorted((local_dir / "run").glob("*.pid"))
        if (pid := pid_in(pid_file)) is not None and Path(f"/proc/{pid}").exists()
    ]


SYSTEM_RUNTIME = Runtime.numbered("bench-system", 0)
"""bench/system_load.py's, also lent by bench/run_all.py to the scripts that expect a runtime."""


def running_runtime_env() -> dict[str, str]:
    """For the scripts that expect a running runtime: the QINGLIAN_ settings given (by default
    `make up`'s Kafka and FerretDB), a database and consumer groups of this run's own."""
    return {
        "QINGLIAN_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
        "QINGLIAN_MONGO_URL": "mongodb://127.0.0.1:27018/",
        **{name: value for name, value in os.environ.items() if name.startswith("QINGLIAN_")},
        "QINGLIAN_MONGO_DB": f"bench_{tag()}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"bench-{tag()}-",
        "QINGLIAN_LOG_LEVEL": "WARNING",
    }
