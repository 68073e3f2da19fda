"""Intake over HTTP: accepted events per second and latency to Kafka's acknowledgement.

    .venv/bin/python -m bench.intake_throughput            # needs deploy/local/runtime.sh start

Intake (single events, then batches of 100) and a bare FastAPI endpoint that only parses the
same body, each driven by the same closed-loop client; then intake at a constant arrival rate
of half its measured maximum. Intake answers 202 only after Kafka acknowledged (acks=all).
"""

import argparse
import statistics
import sys
from typing import Any

import httpx

from bench.harness import report
from bench.harness.load import closed_loop, open_loop, percentile, timed
from bench.harness.processes import command, start_service, stop_service
from bench.harness.runtime import ROOT, Deadline, free_port, running_runtime_env, tag
from schemas.catalogue import BY_TYPE
from tests.factories import complaint_payload

LOG_DIR = ROOT / ".local" / "bench"
BATCH_SIZE = 100


def summary(latencies: list[float], events: int, seconds: float) -> dict[str, float]:
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def complaints(count: int) -> list[dict[str, Any]]:
    run = tag()
    return [complaint_payload(source_ref=f"BENCH-{run}-{n}") for n in range(count)]


async def post_all(
    url: str, bodies: list[Any], *, workers: int, key: str | None, expect: int
) -> dict[str, float]:
    """Closed loop: ``workers`` clients, each posting the next body once answered."""
    latencies: list[float] = []
    async with httpx.AsyncClient(headers={"X-API-Key": key} if key else {}, timeout=30) as client:

        async def send(body: Any) -> None:
            answer = await timed(client.post(url, json=body), latencies)
            if answer.status_code != expect:
                raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")

        seconds = await closed_loop(send, bodies, workers=workers)
    return summary(latencies, len(latencies), seconds)


async def at_rate(url: str, key: str, *, rate: float, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    bodies = complaints(int(rate * seconds) + 1)
    async with httpx.AsyncClient(headers={"X-API-Key": key}, timeout=30) as client:

        async def send(n: int) -> None:
            answer = await timed(client.post(url, json=bodies[n]), latencies)
            if answer.status_code != 202:
                raise RuntimeError(f"{url}: {answer.status_code}")

        _, took = await open_loop(send, rate=rate, count=int(rate * seconds))
    return summary(latencies, len(latencies), took) | {"target_rate_per_s": rate}


async def measure_urls(options: argparse.Namespace, intake: str, bare: str, key: str) -> Any:
    n, c = options.events, options.concurrency
    for url, auth in ((intake, key), (bare, None)):  # warm up both
        await post_all(f"{url}/v1/complaints", complaints(200), workers=c, key=auth, expect=202)
    single = await post_all(
        f"{intake}/v1/complaints", complaints(n), workers=c, key=key, expect=202
    )
    baseline = await post_all(
        f"{bare}/v1/complaints", complaints(n), workers=c, key=None, expect=202
    )
    batches = [
        {"events": [{"event_type": "complaint", **body} for body in complaints(BATCH_SIZE)]}
        for _ in range(max(1, n // BATCH_SIZE))
    ]
    # One batch at a time: concurrent bulk writes wedge FerretDB 1.24's SQLite backend.
    batch = await post_all(f"{intake}/v1/batch", batches, workers=1, key=key, expect=200)
    batch["events"] *= BATCH_SIZE
    batch["events_per_s"] = round(batch["events"] / batch["seconds"], 1)
    batch["batch_size"] = BATCH_SIZE
    batch["p50_ms_per_batch"], batch["p99_ms_per_batch"] = batch.pop("p50_ms"), batch.pop("p99_ms")
    batch.pop("mean_ms")
    rate = single["events_per_s"] / 2
    half = await at_rate(
        f"{intake}/v1/complaints", key, rate=rate, seconds=options.open_loop_seconds
    )
    return {
        "concurrency": c,
        "single": single,
        "bare_parse_only": baseline,
        "single_to_bare_ratio": round(single["events_per_s"] / baseline["events_per_s"], 3),
        "batch": batch,
        "half_max_rate_single": half,
        "goals": {"single_to_bare_ratio_at_least": 0.5, "p99_ms_at_half_rate_below": 50},
    }


def measure(options: argparse.Namespace, deadline: Deadline, result: dict[str, Any]) -> None:
    env = running_runtime_env()
    scopes = ",".join(BY_TYPE)
    key = command(
        "services.intake.keys", "create", "--source", "portal", "--scopes", scopes, env=env
    )
    intake = start_service("intake", env=env, port=free_port(range(8301, 8400)), log_dir=LOG_DIR)
    try:
        bare = start_service(
            "bare",
            env=env,
            port=free_port(range(8302, 8400)),
            log_dir=LOG_DIR,
            module="bench.bare_endpoint",
        )
        try:
            result |= deadline.run(measure_urls(options, intake.url, bare.url, key))
        finally:
            stop_service(bare)
    finally:
        stop_service(intake)


def main() -> int:
    parser = report.parser(__doc__, timeout=900)
    parser.add_argument("--events", type=int, default=3000, help="events per closed-loop phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--open-loop-seconds", type=float, default=15.0)
    return report.run("intake_http", parser.parse_args(), measure)


if __name__ == "__main__":
    sys.exit(main())
