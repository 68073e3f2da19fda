"""Every benchmark bench/run_all.toml names, one after another, into one JSON summary.

    .venv/bin/python -m bench.run_all [--quick] [--only system_load,intake_throughput]

Each as ``python -m bench.<name> ARGS`` in its own session, with the sizes and time limit the
TOML gives; its output and log in .local/bench/run_all/, the summary in .local/bench/summary.json.
Those that need a runtime are lent SYSTEM_RUNTIME. One whose runtime folder has servers running
is skipped unless --force. On its time limit: SIGINT (its cleanup runs), 120 s later SIGKILL to
its process group and ``runtime.sh stop`` on its runtime folder.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import report, runtime
from bench.harness.runtime import ROOT, SYSTEM_RUNTIME

OUT_DIR = ROOT / ".local" / "bench"
GRACE_SECONDS = 120.0
SCRIPTS: dict[str, dict[str, Any]] = tomllib.loads(Path(__file__).with_suffix(".toml").read_text())


def parse_json(text: str) -> Any:
    """The JSON document a script printed: its whole output, or from a line opening an object."""
    for start in (0, *(line.start() for line in re.finditer("^{", text, re.MULTILINE))):
        try:
            return json.loads(text[start:])
        except ValueError:
            continue
    return None


def run_script(name: str, script: dict[str, Any], *, quick: bool, limit: float) -> dict[str, Any]:
    args = [*script["quick_args" if quick else "args"], "--timeout", str(int(max(60, limit - 60)))]
    entry: dict[str, Any] = {"args": args, "limit_s": round(limit)}
    env = runtime.clean_env()
    started = time.monotonic()
    if script.get("needs_runtime"):
        try:
            SYSTEM_RUNTIME.start_fresh(runtime.Deadline(300))
        except (subprocess.SubprocessError, TimeoutError) as error:
            return entry | {"status": "failed", "error": f"could not start a runtime: {error}"}
        env |= {
            "QINGLIAN_KAFKA_BOOTSTRAP": SYSTEM_RUNTIME.bootstrap,
            "QINGLIAN_MONGO_URL": SYSTEM_RUNTIME.mongo_url,
        }
    (OUT_DIR / "run_all").mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / "run_all" / f"{name}.log"
    print(f"run_all: {name} {' '.join(args)} (limit {limit:.0f} s)", file=sys.stderr)
    timed_out = False
    try:
        with log_path.open("w", encoding="utf-8") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and modules)
                [sys.executable, "-m", f"bench.{name}", *args],
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
        if script.get("needs_runtime"):
            SYSTEM_RUNTIME.stop()
    if timed_out and script.get("runtime_dir"):
        runtime.Runtime(script["runtime_dir"], 0, 0, 0, 0).stop()  # no ports: it stops by pid files
    (OUT_DIR / "run_all" / f"{name}.json").write_text(stdout or "", encoding="utf-8")
    result = parse_json(stdout or "")
    ok = process.returncode == 0 and result is not None
    entry |= {
        "status": "timeout" if timed_out else "ok" if ok else "failed",
        "returncode": process.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "result": result,
        "log": str(log_path.relative_to(ROOT)),
    }
    if entry["status"] != "ok":
        entry["log_tail"] = log_path.read_text(errors="replace").splitlines()[-15:]
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, ~10-15 minutes")
    parser.add_argument("--only", help="comma-separated script names")
    parser.add_argument("--budget", type=float, default=2400.0, help="seconds for everything")
    parser.add_argument("--summary", type=Path, default=OUT_DIR / "summary.json")
    parser.add_argument("--force", action="store_true", help="run it even if its runtime is in use")
    options = parser.parse_args()
    scripts = SCRIPTS
    if options.only:
        wanted = {name.strip() for name in options.only.split(",") if name.strip()}
        if unknown := wanted - scripts.keys():
            parser.error(f"no such bench script: {', '.join(sorted(unknown))}")
        scripts = {name: script for name, script in scripts.items() if name in wanted}
    load_at_start = report.load_average()
    began = time.monotonic()
    summary: dict[str, Any] = {
        "benchmark": "run_all",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": options.quick,
        "scripts": {},
    }
    for name, script in scripts.items():
        left = options.budget - (time.monotonic() - began)
        limit = min(script["quick_limit" if options.quick else "limit"], left)
        folders = [script.get("runtime_dir"), script.get("needs_runtime") and SYSTEM_RUNTIME.folder]
        running = {
            folder: runtime.servers_running(ROOT / ".local" / folder)
            for folder in folders
            if folder
        }
        busy = {folder: names for folder, names in running.items() if names}
        if limit < 90:
            entry: dict[str, Any] = {"status": "skipped", "reason": "out of budget"}
        elif busy and not options.force:
            reason = f"its runtime is in use by another run (.local/{busy}); --force wipes it"
            entry = {"status": "skipped", "reason": reason}
        else:
            try:
                entry = run_script(name, script, quick=options.quick, limit=limit)
            except Exception as error:  # recorded; the next script runs
                entry = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        summary["scripts"][name] = entry
        print(f"run_all: {name}: {entry['status']}", file=sys.stderr)
    summary["statuses"] = {name: entry["status"] for name, entry in summary["scripts"].items()}
    summary["seconds"] = round(time.monotonic() - began, 1)
    summary["machine"] = report.machine(load_at_start)
    text = json.dumps(summary, indent=2, ensure_ascii=False, default=str)
    options.summary.parent.mkdir(parents=True, exist_ok=True)
    options.summary.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if all(s in ("ok", "skipped") for s in summary["statuses"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
