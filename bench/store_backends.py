"""The local store's two backends under the same load: FerretDB v1.24.2 on SQLite (what the local
runtime ran first) and on PostgreSQL (what it runs now), with 16 concurrent clients.

    .venv/bin/python -m bench.store_backends                      # 60 s per backend
    .venv/bin/python -m bench.store_backends --seconds 15         # a quick run
    .venv/bin/python -m bench.store_backends --backends postgresql --clients 32

Needs the FerretDB binary deploy/local/runtime.sh builds (``runtime.sh fetch``). sqlite:
FerretDB started here with ``--handler=sqlite`` on a fresh folder (as runtime.sh ran it);
postgresql: ``runtime.sh start ferretdb`` on .local/bench-store/postgresql. Per backend: 3,000
documents preloaded, then --clients clients, each with a connection of its own, repeat for
--seconds: insert a document, find it by _id, update it by _id, find every document with its
department and category (no index). Failed events are counted by error.
"""

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from bench.harness import report
from bench.harness.load import latency_summary
from bench.harness.processes import stop_process
from bench.harness.runtime import ROOT, Deadline, Runtime, clean_env, tag
from services.common.store import Document

RUNTIME_SH = ROOT / "deploy" / "local" / "runtime.sh"
LOCAL_DIR = ROOT / ".local" / "bench-store"
SQLITE_RUNTIME = Runtime.of("bench-store/sqlite", 49402, 47428, 48498, 45422)
"""Only its FerretDB's ports are used (this script starts it)."""
POSTGRES_RUNTIME = Runtime.of("bench-store/postgresql", 49412, 47438, 48508, 45432)
PRELOADED = 3000
PRELOAD_CHUNK = 50
DEPARTMENTS = [f"dept-{n:02d}" for n in range(12)]
CATEGORIES = ["red_envelope", "kickback", "attitude", "duplicate_test", "other", "procurement"]
DESCRIPTION = "患者家属反映挂号窗口服务态度差，排队一小时无人处理。" * 4


def ferretdb_binary() -> Path:
    """The binary runtime.sh builds, at the version it names."""
    version = re.search(r'^FERRETDB_VERSION="([^"]+)"', RUNTIME_SH.read_text(), re.MULTILINE)
    if version is None:
        raise RuntimeError(f"no FERRETDB_VERSION in {RUNTIME_SH}")
    cache = Path(os.environ.get("QINGLIAN_CACHE_DIR", Path.home() / ".cache" / "qinglian"))
    binary = cache / f"ferretdb-{version.group(1)}" / "ferretdb"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run deploy/local/runtime.sh fetch")
    return binary


class Store(Protocol):
    def start(self, deadline: Deadline) -> str:
        """Start it; its MongoDB URL once it answers."""
        ...

    def stop(self) -> None: ...


class SqliteFerretDB:
    """FerretDB on SQLite in a fresh folder, as deploy/local/runtime.sh ran it before."""

    def __init__(self) -> None:
        self.folder = LOCAL_DIR / "sqlite"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, deadline: Deadline) -> str:
        shutil.rmtree(self.folder, ignore_errors=True)
        (self.folder / "data").mkdir(parents=True)
        with (self.folder / "ferretdb.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (the binary runtime.sh built)
                [
                    str(ferretdb_binary()),
                    "--handler=sqlite",
                    f"--sqlite-url=file:{self.folder / 'data'}/?_pragma=synchronous(normal)",
                    f"--state-dir={self.folder}",
                    f"--listen-addr=127.0.0.1:{SQLITE_RUNTIME.ferretdb_port}",
                    f"--debug-addr=127.0.0.1:{SQLITE_RUNTIME.ferretdb_debug_port}",
                    "--telemetry=disable",
                    "--log-level=warn",
                ],
                env=clean_env() | {"DO_NOT_TRACK": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        url = SQLITE_RUNTIME.mongo_url
        deadline.run(answering(url, self.process))
        return url

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, patience=30)


class PostgresFerretDB:
    """FerretDB on PostgreSQL, started by deploy/local/runtime.sh on the benchmark's folder."""

    def start(self, deadline: Deadline) -> str:
        POSTGRES_RUNTIME.start_fresh(deadline, "ferretdb")
        deadline.run(answering(POSTGRES_RUNTIME.mongo_url, None))
        return POSTGRES_RUNTIME.mongo_url

    def stop(self) -> None:
        POSTGRES_RUNTIME.stop()


async def answering(url: str, process: subprocess.Popen[bytes] | None) -> None:
    """Wait until the store answers a ping."""
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"FerretDB exited at start; see {LOCAL_DIR}")
        client: AsyncMongoClient[Document] = AsyncMongoClient(url, serverSelectionTimeoutMS=1000)
        try:
            await client.admin.command("ping")
            return
        except PyMongoError:
            await asyncio.sleep(0.3)
        finally:
            await client.close()


def document(key: str, rng: random.Random) -> Document:
    return {
        "_id": key,
        "department": rng.choice(DEPARTMENTS),
        "category": rng.choice(CATEGORIES),
        "status": "received",
        "description": DESCRIPTION,
        "amount_cny": rng.randrange(0, 50_000),
    }


@dataclass
class Tally:
    seconds: list[float] = field(default_factory=list)
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_message: dict[str, str] = field(default_factory=dict)

    def failure(self, error: PyMongoError) -> None:
        self.failed += 1
        kind = type(error).__name__
        if isinstance(error, OperationFailure) and error.details:
            kind += f" {error.details.get('codeName', error.code)}"
        self.errors[kind] += 1
        self.first_message.setdefault(kind, str(error)[:300])


async def client_loop(url: str, db: str, number: int, until: float, tally: Tally) -> None:
    """One client: events one after another until ``until`` (monotonic seconds)."""
    rng = random.Random(number)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url, maxPoolSize=1, serverSelectionTimeoutMS=5000, socketTimeoutMS=60_000
    )
    collection = client[db]["cases"]
    try:
        n = 0
        while time.monotonic() < until:
            n += 1
            doc = document(f"client{number}-{n}", rng)
            started = time.monotonic()
            try:
                await collection.insert_one(doc)
                await collection.find_one({"_id": doc["_id"]})
                await collection.update_one({"_id": doc["_id"]}, {"$set": {"status": "assigned"}})
                await collection.find(
                    {"department": doc["department"], "category": doc["category"]}
                ).to_list(None)
            except PyMongoError as error:
                tally.failure(error)
                continue
            tally.seconds.append(time.monotonic() - started)
    finally:
        await client.close()


async def load(url: str, *, clients: int, seconds: float) -> dict[str, Any]:
    db = f"bench_store_{tag()}"
    setup: AsyncMongoClient[Document] = AsyncMongoClient(url, serverSelectionTimeoutMS=5000)
    rng = random.Random(0)
    preload_started = time.monotonic()
    try:
        docs = [document(f"preloaded-{n}", rng) for n in range(PRELOADED)]
        for start in range(0, PRELOADED, PRELOAD_CHUNK):
            await setup[db]["cases"].insert_many(docs[start : start + PRELOAD_CHUNK])
        preload_seconds = time.monotonic() - preload_started
        tally = Tally()
        started = time.monotonic()
        await asyncio.gather(
            *(client_loop(url, db, n, started + seconds, tally) for n in range(clients))
        )
        elapsed = time.monotonic() - started
        count = await setup[db]["cases"].count_documents({})
    finally:
        await setup.close()
    return {
        "preloaded": PRELOADED,
        "preload_s": round(preload_seconds, 2),
        "window_s": round(elapsed, 2),
        "events_done": len(tally.seconds),
        "events_failed": tally.failed,
        "events_per_s": round(len(tally.seconds) / elapsed, 2),
        "latency": latency_summary(tally.seconds),
        "errors": dict(tally.errors),
        "first_error_message": tally.first_message,
        "documents_at_end": count,
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    stores: dict[str, type[Store]] = {"sqlite": SqliteFerretDB, "postgresql": PostgresFerretDB}
    result["workload"] = {
        "clients": options.clients,
        "seconds_per_backend": options.seconds,
        "event": "insert, find by _id, update by _id, find by two string fields",
        "preloaded_documents": PRELOADED,
    }
    result["backends"] = {}
    for name in options.backends.split(","):
        store = stores[name]()
        print(f"store_backends: {name}, {options.clients} clients", file=sys.stderr)
        try:
            url = store.start(deadline)
            result["backends"][name] = deadline.run(
                load(url, clients=options.clients, seconds=options.seconds)
            )
        finally:
            store.stop()


def main() -> int:
    parser = report.parser(__doc__, timeout=900)
    parser.add_argument("--seconds", type=float, default=60.0, help="load per backend")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    return report.run("store_backends", parser.parse_args(), measure)


if __name__ == "__main__":
    sys.exit(main())
