"""A benchmark run from its options to the JSON it prints: the deadline, the error if it did
not finish (what it measured so far kept), its runtime stopped, the machine and its load."""

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness.runtime import Deadline, Runtime

Measure = Callable[[argparse.Namespace, Deadline, dict[str, Any]], None]


def load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def machine(load_at_start: list[float]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def parser(doc: str | None, *, timeout: float) -> argparse.ArgumentParser:
    """A benchmark's argument parser: its description, --timeout and --output."""
    parsed = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parsed.add_argument("--timeout", type=float, default=timeout, help="seconds for the run")
    parsed.add_argument("--output", type=Path, help="also write the JSON here")
    return parsed


def run(
    name: str,
    options: argparse.Namespace,
    measure: Measure,
    *,
    runtime: Runtime | None = None,
    head: dict[str, Any] | None = None,
    notes: str | None = None,
) -> int:
    """``measure(options, deadline, result)``, then the result printed as JSON; 1 if it failed."""
    deadline = Deadline(options.timeout)
    load_at_start = load_average()
    result: dict[str, Any] = {"benchmark": name} | (head or {})
    status = 0
    started = time.monotonic()
    try:
        measure(options, deadline, result)
    except Exception as error:  # reported in the JSON, with what was started stopped
        result["error"] = (
            f"did not finish within {options.timeout:.0f} s"
            if isinstance(error, TimeoutError)
            else f"{type(error).__name__}: {error}"
        )
        status = 1
    finally:
        if runtime is not None:
            runtime.stop()
    result["run_seconds"] = round(time.monotonic() - started, 1)
    result["machine"] = machine(load_at_start)
    if notes:
        result["notes"] = notes
    text = json.dumps(result, indent=2, ensure_ascii=False, default=str)
    if options.output:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    if status:
        print(f"{name}: {result['error']}", file=sys.stderr)
    return status


def main(
    name: str,
    doc: str | None,
    measure: Measure,
    flags: dict[str, Any],
    *,
    timeout: float,
    runtime: Runtime | None = None,
) -> int:
    """run() with parser()'s options and ``flags`` (``{"open_loop_seconds": 15.0}``:
    --open-loop-seconds, a float, 15.0 by default)."""
    options = parser(doc, timeout=timeout)
    for flag, default in flags.items():
        options.add_argument(f"--{flag.replace('_', '-')}", type=type(default), default=default)
    return run(name, options.parse_args(), measure, runtime=runtime)
