"""Intake over HTTP: accepted events per second and latency to Kafka's acknowledgement.

    .venv/bin/python -m bench.intake_throughput            # needs deploy/local/runtime.sh start

In one run, on this machine: intake (single events, then batches of 100) and a bare FastAPI
endpoint that only parses the same body, each driven by the same closed-loop client; then
intake at a constant arrival rate of half its measured maximum. Intake answers 202 only after
Kafka acknowledged the event (acks=all), so its latency is request → Kafka ack. Prints JSON.
The client runs on the same 2 cores as the servers; the numbers are for comparison within a run.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench._runtime import percentile
from schemas.catalogue import BY_TYPE
from tests.factories import complaint_payload

INTAKE_PORT, BARE_PORT = 8301, 8302
LOG_DIR = Path(".local/bench")
BATCH_SIZE = 100


@contextmanager
def server(args: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    """A server process on loopback, its log in .local/bench/; stopped on exit."""
    url = f"http://127.0.0.1:{port}"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / f"{port}.log").open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
            [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/docs", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{args} did not start")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=40)


def summary(latencies: list[float], events: int, seconds: float) -> dict[str, float]:
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


async def closed_loop(
    url: str, bodies: list[Any], *, concurrency: int, headers: dict[str, str], expect: int
) -> tuple[list[float], float]:
    """Each of ``concurrency`` workers sends the next body as soon as its last one is answered."""
    latencies: list[float] = []
    queue = iter(bodies)
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:

        async def worker() -> None:
            for body in queue:
                started = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != expect:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


async def open_loop(
    url: str, make_body: Callable[[], Any], *, rate: float, seconds: float, headers: dict[str, str]
) -> tuple[list[float], float]:
    """Requests at a constant arrival rate, however slow the answers (no coordinated omission)."""
    latencies: list[float] = []
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:

        async def send(body: Any) -> None:
            started = time.perf_counter()
            response = await client.post(url, json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise RuntimeError(f"{url}: {response.status_code}")

        tasks = []
        start = time.perf_counter()
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(make_body())))
        await asyncio.gather(*tasks)
        return latencies, time.perf_counter() - start


def complaints(count: int) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    return [complaint_payload(source_ref=f"BENCH-{run}-{n}") for n in range(count)]


async def measure(options: argparse.Namespace, intake: str, bare: str, key: str) -> dict[str, Any]:
    headers, n, c = {"X-API-Key": key}, options.events, options.concurrency
    intake_url, bare_url = f"{intake}/v1/complaints", f"{bare}/v1/complaints"
    for url, auth in ((intake_url, headers), (bare_url, {})):  # warm up both
        await closed_loop(url, complaints(200), concurrency=c, headers=auth, expect=202)

    latencies, seconds = await closed_loop(
        intake_url, complaints(n), concurrency=c, headers=headers, expect=202
    )
    single = summary(latencies, n, seconds)
    latencies, seconds = await closed_loop(
        bare_url, complaints(n), concurrency=c, headers={}, expect=202
    )
    baseline = summary(latencies, n, seconds)

    batches = [
        {"events": [{"event_type": "complaint", **body} for body in complaints(BATCH_SIZE)]}
        for _ in range(max(1, n // BATCH_SIZE))
    ]
    # One batch at a time: concurrent bulk writes wedge FerretDB 1.24's SQLite backend.
    latencies, seconds = await closed_loop(
        f"{intake}/v1/batch", batches, concurrency=1, headers=headers, expect=200
    )
    batch = summary(latencies, len(batches) * BATCH_SIZE, seconds)
    batch["batch_size"] = BATCH_SIZE
    batch["p50_ms_per_batch"], batch["p99_ms_per_batch"] = batch.pop("p50_ms"), batch.pop("p99_ms")
    batch.pop("mean_ms")

    rate = single["events_per_s"] / 2
    refs = iter(complaints(int(rate * options.open_loop_seconds) + 1))
    latencies, seconds = await open_loop(
        intake_url,
        lambda: next(refs),
        rate=rate,
        seconds=options.open_loop_seconds,
        headers=headers,
    )
    half_rate = summary(latencies, len(latencies), seconds) | {"target_rate_per_s": rate}

    return {
        "benchmark": "intake_http",
        "concurrency": c,
        "single": single,
        "bare_parse_only": baseline,
        "single_to_bare_ratio": round(single["events_per_s"] / baseline["events_per_s"], 3),
        "batch": batch,
        "half_max_rate_single": half_rate,
        "goals": {
            "single_to_bare_ratio_at_least": 0.5,
            "p99_ms_at_half_rate_below": 50,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=3000, help="events per closed-loop phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--open-loop-seconds", type=float, default=15.0)
    options = parser.parse_args()
    env = {
        **os.environ,
        "QINGLIAN_MONGO_DB": f"bench_{uuid.uuid4().hex[:8]}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"bench-{uuid.uuid4().hex[:8]}-",
        "QINGLIAN_LOG_LEVEL": "WARNING",
    }
    key = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "services.intake.keys",
            "create",
            "--source",
            "portal",
            "--scopes",
            ",".join(BY_TYPE),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    with (
        server(
            ["-m", "services.intake"], INTAKE_PORT, env | {"QINGLIAN_HTTP_PORT": str(INTAKE_PORT)}
        ) as intake,
        server(
            ["-m", "bench.bare_endpoint"], BARE_PORT, env | {"BENCH_PORT": str(BARE_PORT)}
        ) as bare,
    ):
        result = asyncio.run(measure(options, intake, bare, key))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
