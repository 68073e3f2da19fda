"""``python -m services.reporting.rebuild --into NEWDB`` on a benchmark's runtime, bounded in
time: its summary, wall time, progress and the CPU it, FerretDB and Kafka used."""

import asyncio
import contextlib
import json
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.processes import CpuWindow
from bench.harness.runtime import ROOT, Runtime, clean_env

PROGRESS = re.compile(rb"rebuild: (\d+) of \d+ records read")


def records_read(log: Path) -> int | None:
    """The records a running rebuild has read, from its last progress line (it inserts into
    its database only at the end)."""
    found = PROGRESS.findall(log.read_bytes())
    return int(found[-1]) if found else None


def thin(values: list[Any], keep: int) -> list[Any]:
    if len(values) <= keep:
        return values
    step = len(values) / keep
    return [values[int(i * step)] for i in range(keep)] + [values[-1]]


@dataclass
class Rebuilt:
    finished: bool
    seconds: float
    summary: dict[str, Any] | None  # what the tool printed, if it finished
    records_read: int
    cpu: CpuWindow
    own_cpu_s: float  # the rebuild process's CPU, from getrusage once it was reaped
    samples: list[tuple[float, int]] = field(default_factory=list)

    def cpu_per_record(self, records: int) -> dict[str, Any]:
        usage = self.cpu.end(records)
        rebuild = usage["processes"].setdefault("rebuild", {})
        total = usage["total_cpu_s"] - rebuild.get("cpu_s", 0.0) + self.own_cpu_s
        rebuild["cpu_s"] = round(self.own_cpu_s, 2)
        rebuild["cpu_ms_per_event"] = round(self.own_cpu_s * 1000 / max(records, 1), 3)
        usage["total_cpu_s"] = round(total, 2)
        usage["total_cpu_ms_per_event"] = round(total * 1000 / max(records, 1), 2)
        return usage


async def rebuild(runtime: Runtime, *, into: str, source_db: str, limit: float) -> Rebuilt:
    """Run the rebuild from ``source_db``'s settings into ``into``; stopped after ``limit`` s."""
    env = clean_env() | runtime.service_env(db=source_db) | {"QINGLIAN_LOG_LEVEL": "WARNING"}
    log = runtime.log_dir / f"bench-rebuild-{into}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "services.reporting.rebuild", "--into", into),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    pids = {"rebuild": process.pid, "kafka": runtime.pid("kafka")}
    cpu = CpuWindow(pids | {"ferretdb": runtime.pid("ferretdb")})
    cpu.begin()
    started = time.perf_counter()
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(5)
            cpu.sample()
            if (read := records_read(log)) is not None:
                samples.append((round(time.perf_counter() - started, 1), read))

    sampler = asyncio.create_task(sample())
    output = b""
    try:
        with contextlib.suppress(TimeoutError):
            output, _ = await asyncio.wait_for(process.communicate(), limit)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 20)
            if process.returncode is None:
                process.kill()
                await process.wait()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finished = process.returncode == 0
    return Rebuilt(
        finished=finished,
        seconds=seconds,
        summary=json.loads(output) if finished else None,
        records_read=records_read(log) or 0,
        cpu=cpu,
        own_cpu_s=own,
        samples=thin(samples, 12),
    )
