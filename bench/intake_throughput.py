"""Intake over HTTP: accepted events per second and latency to Kafka's acknowledgement (acks=all).

    .venv/bin/python -m bench.intake_throughput            # needs deploy/local/runtime.sh start

Intake (single events, then batches of 100) and a bare FastAPI endpoint that only parses the
body, driven by the same closed-loop client; then intake at half its maximum rate (open loop).
"""

import argparse
import statistics
import sys
from typing import Any

import httpx

from bench.harness import load, processes, report, runtime
from bench.harness.runtime import Deadline
from schemas.catalogue import BY_TYPE
from tests.factories import complaint_payload

LOG_DIR = runtime.ROOT / ".local" / "bench"
BATCH_SIZE = 100


def complaints(count: int) -> list[dict[str, Any]]:
    run = runtime.tag()
    return [complaint_payload(source_ref=f"BENCH-{run}-{n}") for n in range(count)]


async def post_all(
    url: str,
    bodies: list[Any],
    *,
    workers: int,
    key: str | None,
    expect: int = 202,
    rate: float = 0,
) -> dict[str, float]:
    """``workers`` clients, each posting the next body once answered (closed loop); or, with a
    ``rate``, one body after another at that rate (open loop)."""
    latencies: list[float] = []
    async with httpx.AsyncClient(headers={"X-API-Key": key} if key else {}, timeout=30) as client:

        async def send(body: Any) -> None:
            answer = await load.timed(client.post(url, json=body), latencies)
            if answer.status_code != expect:
                raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")

        if rate:
            _, seconds = await load.open_loop(
                lambda n: send(bodies[n]), rate=rate, count=len(bodies)
            )
        else:
            seconds = await load.closed_loop(send, bodies, workers=workers)
    return {
        "events": len(latencies),
        "seconds": round(seconds, 3),
        "events_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(load.percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(load.percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


async def measure_urls(options: argparse.Namespace, intake: str, bare: str, key: str) -> Any:
    n, c = options.events, options.concurrency
    for url, auth in ((intake, key), (bare, None)):  # warm up both
        await post_all(f"{url}/v1/complaints", complaints(200), workers=c, key=auth)
    single = await post_all(f"{intake}/v1/complaints", complaints(n), workers=c, key=key)
    baseline = await post_all(f"{bare}/v1/complaints", complaints(n), workers=c, key=None)
    batches = [
        {"events": [{"event_type": "complaint", **body} for body in complaints(BATCH_SIZE)]}
        for _ in range(max(1, n // BATCH_SIZE))
    ]
    # One batch at a time: concurrent bulk writes wedge FerretDB 1.24's SQLite backend.
    batch = await post_all(f"{intake}/v1/batch", batches, workers=1, key=key, expect=200)
    rate = single["events_per_s"] / 2
    half_rate = complaints(max(1, int(rate * options.open_loop_seconds)))
    half = await post_all(f"{intake}/v1/complaints", half_rate, workers=1, key=key, rate=rate)
    return {
        "concurrency": c,
        "single": single,
        "bare_parse_only": baseline,
        "single_to_bare_ratio": round(single["events_per_s"] / baseline["events_per_s"], 3),
        "batch": {
            "events": batch["events"] * BATCH_SIZE,
            "seconds": batch["seconds"],
            "events_per_s": round(batch["events"] * BATCH_SIZE / batch["seconds"], 1),
            "batch_size": BATCH_SIZE,
            "p50_ms_per_batch": batch["p50_ms"],
            "p99_ms_per_batch": batch["p99_ms"],
        },
        "half_max_rate_single": half | {"target_rate_per_s": rate},
        "goals": {"single_to_bare_ratio_at_least": 0.5, "p99_ms_at_half_rate_below": 50},
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    env = runtime.running_runtime_env()
    scopes = ",".join(BY_TYPE)
    key = processes.command(
        "services.intake.keys", "create", "--source", "portal", "--scopes", scopes, env=env
    )
    service = {"env": env, "log_dir": LOG_DIR}
    with (
        processes.running("intake", ports=range(8301, 8400), **service) as intake,
        processes.running(
            "bare", ports=range(8302, 8400), module="bench.bare_endpoint", **service
        ) as bare,
    ):
        result |= deadline.run(measure_urls(options, intake.url, bare.url, key))


if __name__ == "__main__":
    flags = {"events": 3000, "concurrency": 32, "open_loop_seconds": 15.0}
    sys.exit(report.main("intake_http", __doc__, measure, flags, timeout=900))
