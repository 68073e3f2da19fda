"""Every benchmark in bench/, one after another, into one JSON summary.

    .venv/bin/python -m bench.run_all                  # modest sizes, 1M replayed: about an hour
    .venv/bin/python -m bench.run_all --quick          # small sizes: about 10-15 minutes
    .venv/bin/python -m bench.run_all --only system_load,intake_throughput

Runs each bench script that exists as ``python -m bench.<name> ARGS`` in a subprocess (its own
session), with the sizes below (--quick: smaller ones) and a time limit each; reads the JSON
each prints; writes one summary to .local/bench/summary.json (--summary) and prints it. Each
script's own output and log go to .local/bench/run_all/<name>.json and .log. A script that
fails, prints no JSON or runs out of time is recorded as such, and the next one runs.

The scripts start and stop Kafka and FerretDB of their own, except intake_throughput and
intake_raw_topic, which expect a runtime: this script lends them one (SYSTEM_RUNTIME of
bench/harness/runtime.py), started before and stopped after each. Scripts run one at a time:
they share the machine's cores.

A script whose runtime folder has servers running (another run of it, by someone else) is
skipped rather than wiped, unless --force. On a script's time limit: SIGINT (its cleanup
runs: its services and runtime are stopped), then, 120 s later, SIGKILL to its process group
and ``runtime.sh stop`` on its runtime folder.
A bench script this file does not know is run with its own defaults, limited to 15 minutes
(5 with --quick).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bench.harness.report import load_average, machine
from bench.harness.runtime import ROOT, SYSTEM_RUNTIME, Deadline, clean_env, servers_running
from services.common.datafile import DataFile

OUT_DIR = ROOT / ".local" / "bench"
NOT_BENCHMARKS = {"__init__", "bare_endpoint", "run_all"}
GRACE_SECONDS = 120.0


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = ""
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    limit: float = 900
    quick_limit: float = 300
    runtime_dir: str | None = None
    needs_runtime: bool = False


class Scripts(DataFile):
    """bench/run_all.toml"""

    model_config = ConfigDict(extra="allow", frozen=True)

    def each(self) -> tuple[Script, ...]:
        extra = self.model_extra or {}
        return tuple(Script.model_validate(entry | {"name": name}) for name, entry in extra.items())


KNOWN = Scripts.from_file(Path(__file__).with_suffix(".toml")).each()


def available() -> list[Script]:
    """The known scripts that exist, in order, then any other bench module with a main()."""
    here = ROOT / "bench"
    found = [script for script in KNOWN if (here / f"{script.name}.py").exists()]
    known = {script.name for script in KNOWN}
    for path in sorted(here.glob("*.py")):
        name = path.stem
        if name in known or name in NOT_BENCHMARKS or name.startswith("_"):
            continue
        if "def main(" in path.read_text(encoding="utf-8"):
            found.append(Script(name=name))
    return found


def parse_json(text: str) -> Any:
    """The JSON document a script printed (the whole output, or from the first line that
    opens an object at column 0)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    for start, line in enumerate(lines):
        if line.startswith("{"):
            try:
                return json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
    return None


def stop_runtime_dir(folder: str) -> None:
    """runtime.sh stop on a script's runtime folder (it finds the processes by pid file)."""
    subprocess.run(  # noqa: S603 (our own script)
        [str(ROOT / "deploy" / "local" / "runtime.sh"), "stop"],
        env=clean_env() | {"QINGLIAN_LOCAL_DIR": str(ROOT / ".local" / folder)},
        stdout=sys.stderr,
        stderr=sys.stderr,
        check=False,
        timeout=150,
    )


def run_script(script: Script, *, quick: bool, limit: float) -> dict[str, Any]:
    args = list(script.quick_args if quick else script.args)
    args += ["--timeout", str(int(max(60.0, limit - 60)))]
    env = clean_env()
    lent = False
    entry: dict[str, Any] = {"args": args, "limit_s": round(limit)}
    started = time.monotonic()
    if script.needs_runtime:
        try:
            SYSTEM_RUNTIME.start_fresh(Deadline(300))
            lent = True
        except (subprocess.SubprocessError, TimeoutError) as error:
            return entry | {"status": "failed", "error": f"could not start a runtime: {error}"}
        env |= {
            "QINGLIAN_KAFKA_BOOTSTRAP": SYSTEM_RUNTIME.bootstrap,
            "QINGLIAN_MONGO_URL": SYSTEM_RUNTIME.mongo_url,
        }
    out_dir = OUT_DIR / "run_all"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / f"{script.name}.log"
    print(f"run_all: {script.name} {' '.join(args)} (limit {limit:.0f} s)", file=sys.stderr)
    timed_out = False
    try:
        with log_path.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
                [sys.executable, "-m", f"bench.{script.name}", *args],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            try:
                stdout, _ = process.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                process.send_signal(signal.SIGINT)  # its finally blocks stop what it started
                try:
                    stdout, _ = process.communicate(timeout=GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    stdout, _ = process.communicate(timeout=30)
    finally:
        if lent:
            SYSTEM_RUNTIME.stop()
    if timed_out and script.runtime_dir:
        stop_runtime_dir(script.runtime_dir)
    seconds = time.monotonic() - started
    (out_dir / f"{script.name}.json").write_text(stdout or "", encoding="utf-8")
    result = parse_json(stdout or "")
    if timed_out:
        status = "timeout"
    elif process.returncode == 0 and result is not None:
        status = "ok"
    else:
        status = "failed"
    entry |= {
        "status": status,
        "returncode": process.returncode,
        "seconds": round(seconds, 1),
        "result": result,
        "log": str(log_path.relative_to(ROOT)),
    }
    if status != "ok":
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        entry["log_tail"] = tail
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, ~10-15 minutes")
    parser.add_argument("--only", help="comma-separated script names")
    parser.add_argument(
        "--budget", type=float, default=2400.0, help="seconds for everything (limits shrink)"
    )
    parser.add_argument("--summary", type=Path, default=OUT_DIR / "summary.json")
    parser.add_argument(
        "--force", action="store_true", help="run a script even if its runtime folder is in use"
    )
    options = parser.parse_args()
    scripts = available()
    if options.only:
        wanted = {name.strip() for name in options.only.split(",") if name.strip()}
        unknown = wanted - {script.name for script in scripts}
        if unknown:
            parser.error(f"no such bench script: {', '.join(sorted(unknown))}")
        scripts = [script for script in scripts if script.name in wanted]

    load_at_start = load_average()
    began = time.monotonic()
    summary: dict[str, Any] = {
        "benchmark": "run_all",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": options.quick,
        "scripts": {},
    }
    for script in scripts:
        left = options.budget - (time.monotonic() - began)
        limit = min(script.quick_limit if options.quick else script.limit, left)
        if limit < 90:
            summary["scripts"][script.name] = {"status": "skipped", "reason": "out of budget"}
            continue
        folders = [script.runtime_dir] if script.runtime_dir else []
        if script.needs_runtime:
            folders.append(SYSTEM_RUNTIME.local_dir.name)
        busy = {folder: servers_running(ROOT / ".local" / folder) for folder in folders}
        busy = {folder: names for folder, names in busy.items() if names}
        if busy and not options.force:
            summary["scripts"][script.name] = {
                "status": "skipped",
                "reason": f"its runtime is in use by another run (.local/{busy}); --force wipes it",
            }
            print(f"run_all: {script.name}: skipped, runtime in use", file=sys.stderr)
            continue
        try:
            entry = run_script(script, quick=options.quick, limit=limit)
        except Exception as error:  # recorded; the next script runs
            entry = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        summary["scripts"][script.name] = entry
        print(f"run_all: {script.name}: {entry['status']}", file=sys.stderr)
    statuses = {name: entry["status"] for name, entry in summary["scripts"].items()}
    summary["statuses"] = statuses
    summary["seconds"] = round(time.monotonic() - began, 1)
    summary["machine"] = machine(load_at_start)
    text = json.dumps(summary, indent=2, ensure_ascii=False, default=str)
    options.summary.parent.mkdir(parents=True, exist_ok=True)
    options.summary.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if all(status in ("ok", "skipped") for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
