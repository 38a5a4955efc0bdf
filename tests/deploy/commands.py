"""The command-line tools the deployment tests drive: promtool, prometheus, docker compose."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"


def require(command: str) -> str:
    """The tool's path; a missing one is a setup error, as a missing Redis is."""
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{command} not found: scripts/setup installs it (Debian package prometheus)")
    return path


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs a tool from the repository root; the result carries its whole output."""
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


def compose_command() -> list[str] | None:
    """``docker compose`` (the v2 plugin) where it exists, else Debian's ``docker-compose``."""
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None
