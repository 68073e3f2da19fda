"""deploy/docker-compose.yml as real Compose implementations load it (no Docker engine needed):
Compose v2's own loader (compose-go, as `docker compose config` runs it, built by
deploy/local/compose-check/build.sh) and Debian's docker-compose 1.29 (`docker-compose config`),
which refuses what v2 alone accepts, such as a top-level ``name:``. Both are installed by
deploy/local/setup.sh.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "docker-compose.yml"
BUILD_COMPOSE_CHECK = DEPLOY_DIR / "local" / "compose-check" / "build.sh"


def _services_in_the_file() -> set[str]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return set(document["services"])


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (a Compose loader on our own file)
        argv, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_compose_v2s_loader_accepts_the_file_and_names_the_project_qinglian() -> None:
    built = _run(str(BUILD_COMPOSE_CHECK), cwd=DEPLOY_DIR)
    assert built.returncode == 0, built.stderr

    loaded = _run(built.stdout.strip(), str(COMPOSE_FILE), cwd=DEPLOY_DIR.parent)

    assert loaded.returncode == 0, loaded.stderr
    project = json.loads(loaded.stdout)
    # The name volumes carry (qinglian_kafka-data, …): one that existing installations keep.
    assert project["name"] == "qinglian"
    assert set(project["services"]) == _services_in_the_file()


def test_debian_docker_compose_1_29_accepts_the_file() -> None:
    program = shutil.which("docker-compose")
    if program is None:
        pytest.fail("docker-compose not found: deploy/local/setup.sh installs it (Debian package)")
    version = _run(program, "version", "--short", cwd=DEPLOY_DIR)
    assert version.stdout.startswith("1."), version.stdout

    loaded = _run(program, "--profile", "tools", "config", "--services", cwd=DEPLOY_DIR)

    assert loaded.returncode == 0, loaded.stderr
    assert set(loaded.stdout.split()) == _services_in_the_file()


def test_the_project_name_comes_from_the_env_file_both_versions_read() -> None:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY_DIR / ".env").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )

    assert "name" not in document  # docker-compose 1.29 refuses it
    assert env == {"COMPOSE_PROJECT_NAME": "qinglian"}
