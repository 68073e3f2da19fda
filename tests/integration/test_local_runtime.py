"""The local runtime script refuses clearly instead of misbehaving."""

import os
import socket
import subprocess
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "deploy" / "local" / "runtime.sh"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own script)
        [str(RUNTIME), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


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


def test_status_names_both_servers(tmp_path: Path) -> None:
    result = run("status", env={**os.environ, "QINGLIAN_LOCAL_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["kafka: stopped", "ferretdb: stopped"]
