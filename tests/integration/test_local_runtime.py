"""The local runtime's scripts refuse clearly instead of misbehaving, and say what runs."""

import os
import socket
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.common.kafka_access import SERVICES as SERVICES_ACCESS
from tests.conftest import InfraSettings

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"
RUNTIME = LOCAL / "runtime.sh"
SERVICES = LOCAL / "services.sh"
SERVICE_NAMES = tuple(SERVICES_ACCESS)


def run(
    *args: str, env: dict[str, str], script: Path = RUNTIME, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own script)
        [str(script), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_port_taken_by_another_program_is_reported_not_reused(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {
            **os.environ,
            "QINGLIAN_LOCAL_DIR": str(tmp_path),
            "QINGLIAN_FERRETDB_PORT": str(port),
            "QINGLIAN_FERRETDB_DEBUG_PORT": "0",
        }
        result = run("start", "ferretdb", env=env)
    assert result.returncode != 0
    assert f"127.0.0.1:{port} is already in use" in result.stderr
    assert not (tmp_path / "run" / "ferretdb.pid").exists()


def test_a_missing_toolchain_is_named_in_one_line(tmp_path: Path) -> None:
    # A PATH with bash's basic tools but no java, mvn or go, and an empty cache.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat", "sed", "mkdir", "rm", "tail", "grep", "stat", "sleep"):
        for directory in ("/usr/bin", "/bin"):
            if Path(directory, tool).exists():
                (bin_dir / tool).symlink_to(Path(directory, tool))
                break
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "QINGLIAN_LOCAL_DIR": str(tmp_path / "local"),
        "QINGLIAN_CACHE_DIR": str(tmp_path / "cache"),
        "QINGLIAN_KAFKA_PORT": "1",
        "QINGLIAN_KAFKA_CONTROLLER_PORT": "2",
    }
    result = run("start", "kafka", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "runtime.sh: java not found: install a Java 17+ runtime "
        "(Debian: apt-get install openjdk-17-jre-headless)"
    ]


def test_status_names_every_server(tmp_path: Path) -> None:
    result = run("status", env={**os.environ, "QINGLIAN_LOCAL_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "kafka: stopped",
        "postgres: stopped",
        "ferretdb: stopped",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as another user only for root")
def test_a_pid_file_left_from_before_a_reboot_never_names_another_program(tmp_path: Path) -> None:
    """After a reboot a pid file may name a process some other program now runs: the
    scripts must not report it as theirs, nor stop it."""
    stranger = subprocess.Popen(["sleep", "120"])  # noqa: S607
    try:
        (tmp_path / "run").mkdir()
        for name in ("kafka", "postgres", "ferretdb"):
            # The pid and the start time (clock ticks after boot) of the process it once was.
            (tmp_path / "run" / f"{name}.pid").write_text(f"{stranger.pid} 1\n")
        env = {**os.environ, "QINGLIAN_LOCAL_DIR": str(tmp_path)}

        status = run("status", env=env)
        stopped = run("stop", env=env)

        assert "running" not in status.stdout.replace("not running", ""), status.stdout
        assert stopped.returncode == 0, stopped.stderr
        assert stranger.poll() is None, "the scripts stopped a process that is not theirs"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_data_folder_postgresql_cannot_reach_is_named(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)  # root's alone: PostgreSQL's user may not pass through it
    env = {
        **os.environ,
        "QINGLIAN_LOCAL_DIR": str(hidden / "local"),
        "QINGLIAN_POSTGRES_PORT": str(free_port()),
    }
    result = run("start", "postgres", env=env)
    assert result.returncode != 0
    assert result.stderr.startswith(
        f"runtime.sh: the user qinglian-pg cannot reach {hidden}/local/postgres.new"
    )
    assert not (hidden / "local" / "postgres").exists()


def test_starting_the_services_again_while_they_run_says_so_and_succeeds(
    infra: InfraSettings, tmp_path: Path
) -> None:
    # Logs that already hold earlier runs, as they do on a machine used for a while: reading
    # one back for a start line must not depend on how long it is.
    logs = tmp_path / "logs"
    logs.mkdir()
    earlier_run = "INFO:     Application startup complete.\n" + "x" * 199 + "\n"
    for name in SERVICE_NAMES:
        (logs / f"{name}.log").write_text(earlier_run * 2000)
    run_id = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "QINGLIAN_LOCAL_DIR": str(tmp_path),
        "QINGLIAN_KAFKA_PORT": infra.kafka_bootstrap.rsplit(":", 1)[1],
        "QINGLIAN_FERRETDB_PORT": str(urlsplit(infra.mongo_url).port),
        "QINGLIAN_MONGO_DB": f"runtime_{run_id}",
        "QINGLIAN_KAFKA_GROUP_PREFIX": f"runtime-{run_id}-",
        **{f"QINGLIAN_{name.upper()}_PORT": str(free_port()) for name in SERVICE_NAMES},
    }
    try:
        first = run("start", env=env, script=SERVICES, timeout=240)
        assert first.returncode == 0, first.stderr
        again = run("start", env=env, script=SERVICES, timeout=240)
        status = run("status", env=env, script=SERVICES)
    finally:
        run("stop", env=env, script=SERVICES)
    assert again.returncode == 0, again.stderr
    count = len(SERVICE_NAMES)
    assert again.stdout.count("already running") == count, again.stdout
    assert again.stdout.count("healthy on http://127.0.0.1:") == count, again.stdout
    assert status.stdout.count(": running (pid") == count, status.stdout
