"""The local store's two backends under the same load: FerretDB v1.24.2 on SQLite (what the local
runtime ran first) and on PostgreSQL (what it runs now), with 16 concurrent clients.

    .venv/bin/python -m bench.store_backends --seconds 15 [--backends postgresql --clients 32]

sqlite: runtime.sh's FerretDB binary with ``--handler=sqlite`` on a fresh folder; postgresql:
``runtime.sh start ferretdb``. Per backend: 3,000 documents preloaded, then --clients clients (a
connection each) repeat for --seconds: insert a document, find it by _id, update it by _id, find
every document of its department and category (no index). Failures are counted by error.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from bench.harness import load, processes, report, runtime
from bench.harness.runtime import Deadline
from services.common.store import Document

SQLITE = runtime.Runtime.numbered("bench-store/sqlite", 1)  # FerretDB only
POSTGRES = runtime.Runtime.numbered("bench-store/postgresql", 2)
PRELOADED = 3000
DEPARTMENTS = [f"dept-{n:02d}" for n in range(12)]
CATEGORIES = ["red_envelope", "kickback", "attitude", "duplicate_test", "other", "procurement"]
DESCRIPTION = "患者家属反映挂号窗口服务态度差，排队一小时无人处理。" * 4


def ferretdb_binary() -> Path:
    """The binary runtime.sh builds, at the version it names."""
    script = (runtime.ROOT / "deploy" / "local" / "runtime.sh").read_text()
    (version,) = re.findall(r'^FERRETDB_VERSION="([^"]+)"', script, re.MULTILINE)
    cache = Path(os.environ.get("QINGLIAN_CACHE_DIR", Path.home() / ".cache" / "qinglian"))
    binary = cache / f"ferretdb-{version}" / "ferretdb"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run deploy/local/runtime.sh fetch")
    return binary


@contextmanager
def sqlite_ferretdb(deadline: Deadline) -> Iterator[str]:
    """FerretDB on SQLite in a fresh folder, as deploy/local/runtime.sh ran it before; its URL."""
    folder = SQLITE.local_dir
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    with (folder / "ferretdb.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (the binary runtime.sh built)
            [
                str(ferretdb_binary()),
                "--handler=sqlite",
                f"--sqlite-url=file:{folder / 'data'}/?_pragma=synchronous(normal)",
                f"--state-dir={folder}",
                f"--listen-addr=127.0.0.1:{SQLITE.ferretdb_port}",
                f"--debug-addr=127.0.0.1:{SQLITE.ferretdb_debug_port}",
                "--telemetry=disable",
                "--log-level=warn",
            ],
            env=runtime.clean_env() | {"DO_NOT_TRACK": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        yield SQLITE.mongo_url
    finally:
        processes.stop_process(process, patience=30)


@contextmanager
def postgres_ferretdb(deadline: Deadline) -> Iterator[str]:
    """FerretDB on PostgreSQL, started by deploy/local/runtime.sh; its URL."""
    try:
        POSTGRES.start_fresh(deadline, "ferretdb")
        yield POSTGRES.mongo_url
    finally:
        POSTGRES.stop()


def document(key: str, rng: random.Random) -> Document:
    return {
        "_id": key,
        "department": rng.choice(DEPARTMENTS),
        "category": rng.choice(CATEGORIES),
        "status": "received",
        "description": DESCRIPTION,
        "amount_cny": rng.randrange(0, 50_000),
    }


async def client_loop(url: str, db: str, number: int, until: float, tally: dict[str, Any]) -> None:
    """One client (a connection of its own): events one after another until ``until``."""
    rng = random.Random(number)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        url, maxPoolSize=1, serverSelectionTimeoutMS=5000, socketTimeoutMS=60_000
    )
    cases = client[db]["cases"]
    try:
        n = 0
        while time.monotonic() < until:
            n += 1
            doc = document(f"client{number}-{n}", rng)
            started = time.monotonic()
            try:
                await cases.insert_one(doc)
                await cases.find_one({"_id": doc["_id"]})
                await cases.update_one({"_id": doc["_id"]}, {"$set": {"status": "assigned"}})
                same = {"department": doc["department"], "category": doc["category"]}
                await cases.find(same).to_list(None)
            except PyMongoError as error:
                kind = type(error).__name__
                if isinstance(error, OperationFailure) and error.details:
                    kind += f" {error.details.get('codeName', error.code)}"
                tally["errors"][kind] += 1
                tally["first_error_message"].setdefault(kind, str(error)[:300])
                continue
            tally["seconds"].append(time.monotonic() - started)
    finally:
        await client.close()


async def load_on(url: str, *, clients: int, seconds: float) -> dict[str, Any]:
    db = f"bench_store_{runtime.tag()}"
    setup: AsyncMongoClient[Document] = AsyncMongoClient(url, serverSelectionTimeoutMS=60_000)
    rng = random.Random(0)
    tally: dict[str, Any] = {"seconds": [], "errors": Counter(), "first_error_message": {}}
    try:
        await setup.admin.command("ping")  # it answers (FerretDB may still be starting)
        preload_started = time.monotonic()
        docs = [document(f"preloaded-{n}", rng) for n in range(PRELOADED)]
        for start in range(0, PRELOADED, 50):
            await setup[db]["cases"].insert_many(docs[start : start + 50])
        preload_seconds = time.monotonic() - preload_started
        started = time.monotonic()
        await asyncio.gather(
            *(client_loop(url, db, n, started + seconds, tally) for n in range(clients))
        )
        elapsed = time.monotonic() - started
        count = await setup[db]["cases"].count_documents({})
    finally:
        await setup.close()
    done = len(tally["seconds"])
    return {
        "preloaded": PRELOADED,
        "preload_s": round(preload_seconds, 2),
        "window_s": round(elapsed, 2),
        "events_done": done,
        "events_failed": sum(tally["errors"].values()),
        "events_per_s": round(done / elapsed, 2),
        "latency": load.latency_summary(tally["seconds"]),
        "errors": dict(tally["errors"]),
        "first_error_message": tally["first_error_message"],
        "documents_at_end": count,
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    stores = {"sqlite": sqlite_ferretdb, "postgresql": postgres_ferretdb}
    result["workload"] = {
        "clients": options.clients,
        "seconds_per_backend": options.seconds,
        "event": "insert, find by _id, update by _id, find by two string fields",
        "preloaded_documents": PRELOADED,
    }
    result["backends"] = {}
    for name in options.backends.split(","):
        print(f"store_backends: {name}, {options.clients} clients", file=sys.stderr)
        with stores[name](deadline) as url:
            work = load_on(url, clients=options.clients, seconds=options.seconds)
            result["backends"][name] = deadline.run(work)


if __name__ == "__main__":
    flags = {"seconds": 60.0, "clients": 16, "backends": "sqlite,postgresql"}
    sys.exit(report.main("store_backends", __doc__, measure, flags, timeout=900))
