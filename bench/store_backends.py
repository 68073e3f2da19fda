"""The local store's two backends under the same load: FerretDB v1.24.2 on SQLite (what the local
runtime ran first) and on PostgreSQL (what it runs now), with 16 concurrent clients.

    .venv/bin/python -m bench.store_backends                      # 60 s per backend
    .venv/bin/python -m bench.store_backends --seconds 15         # a quick run
    .venv/bin/python -m bench.store_backends --backends postgresql --clients 32

Needs nothing running, and the FerretDB binary deploy/local/runtime.sh builds (``runtime.sh
fetch``). Each backend gets a FerretDB of its own on 127.0.0.1, telemetry off, its data under
.local/bench-store (wiped first, stopped after):

- sqlite: FerretDB started here, ``--handler=sqlite`` on a fresh folder with
  ``synchronous(normal)``, as runtime.sh ran it (FerretDB on 47428, debug 48498);
- postgresql: ``runtime.sh start ferretdb`` (FerretDB on 47438, debug 48508, its PostgreSQL on
  45432), as ``make up`` and ``make test`` run it.

Per backend: 3,000 documents preloaded (bulk inserts of 50), then C clients, each with a
MongoDB connection of its own (PyMongo's async client), repeat an event for S seconds: insert a
new document, find it by _id, update it by _id, find every document with its department and
category (two string fields, no index). An event that fails is counted by its error and the
client goes on.

Prints JSON: per backend, events done and failed, events per second, latency per event
(p50/p90/p99/max, done events only), errors by kind with the first message of each; and the
machine (cores, load averages). Nothing else should run meanwhile if the numbers are to mean
much.
"""

import argparse
import asyncio
import json
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

from bench._runtime import ROOT, Deadline, clean_env, latency_summary, machine, tag
from services.common.store import Document

RUNTIME_SH = ROOT / "deploy" / "local" / "runtime.sh"
LOCAL_DIR = ROOT / ".local" / "bench-store"
SQLITE_PORT, SQLITE_DEBUG_PORT = 47428, 48498
POSTGRES_RUNTIME_ENV = {
    "QINGLIAN_LOCAL_DIR": str(LOCAL_DIR / "postgresql"),
    "QINGLIAN_FERRETDB_PORT": "47438",
    "QINGLIAN_FERRETDB_DEBUG_PORT": "48508",
    "QINGLIAN_POSTGRES_PORT": "45432",
}
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


def runtime(command: str, *args: str, timeout: float) -> None:
    subprocess.run(  # noqa: S603 (our own script)
        [str(RUNTIME_SH), command, *args],
        env=clean_env() | POSTGRES_RUNTIME_ENV,
        stdout=sys.stderr,
        stderr=sys.stderr,
        check=True,
        timeout=max(1.0, timeout),
    )


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
                    f"--listen-addr=127.0.0.1:{SQLITE_PORT}",
                    f"--debug-addr=127.0.0.1:{SQLITE_DEBUG_PORT}",
                    "--telemetry=disable",
                    "--log-level=warn",
                ],
                env=clean_env() | {"DO_NOT_TRACK": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        url = f"mongodb://127.0.0.1:{SQLITE_PORT}/"
        deadline.run(answering(url, self.process))
        return url

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class PostgresFerretDB:
    """FerretDB on PostgreSQL, started by deploy/local/runtime.sh on the benchmark's folder."""

    def start(self, deadline: Deadline) -> str:
        runtime("wipe", timeout=deadline.left())
        runtime("start", "ferretdb", timeout=deadline.left())
        url = f"mongodb://127.0.0.1:{POSTGRES_RUNTIME_ENV['QINGLIAN_FERRETDB_PORT']}/"
        deadline.run(answering(url, None))
        return url

    def stop(self) -> None:
        try:
            runtime("stop", timeout=150)
        except subprocess.SubprocessError as error:
            print(f"could not stop the benchmark runtime: {error}", file=sys.stderr)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="load per backend")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole run")
    options = parser.parse_args()
    deadline = Deadline(options.timeout)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    stores: dict[str, type[Store]] = {"sqlite": SqliteFerretDB, "postgresql": PostgresFerretDB}
    results: dict[str, Any] = {}
    for name in options.backends.split(","):
        store = stores[name]()
        print(
            f"store_backends: {name}, {options.clients} clients, {options.seconds:.0f} s",
            file=sys.stderr,
        )
        try:
            url = store.start(deadline)
            results[name] = deadline.run(
                load(url, clients=options.clients, seconds=options.seconds)
            )
        finally:
            store.stop()
    print(
        json.dumps(
            {
                "benchmark": "store_backends",
                "workload": {
                    "clients": options.clients,
                    "seconds_per_backend": options.seconds,
                    "event": "insert, find by _id, update by _id, find by two string fields",
                    "preloaded_documents": PRELOADED,
                },
                "backends": results,
                "machine": machine(load_at_start),
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
