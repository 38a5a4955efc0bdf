"""docker/compose.yaml is a valid Compose file, with and without the gpu profile."""

from __future__ import annotations

import json

import pytest
import yaml

from .commands import DOCKER, compose_command, run

COMPOSE = DOCKER / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        pytest.skip(
            "neither `docker compose` (the v2 plugin, not in Debian) nor Debian's docker-compose is installed"
        )
    return command


@pytest.mark.parametrize("profiles", [[], ["--profile", "gpu"], ["--profile", "scale"]])
def test_compose_config_is_valid(compose, profiles):
    result = run([*compose, "-f", str(COMPOSE), *profiles, "config", "--quiet"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_gpu_service_reserves_an_nvidia_gpu_and_only_in_its_profile(compose):
    result = run([*compose, "-f", str(COMPOSE), "--profile", "gpu", "config"])
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["app-gpu"]["profiles"] == ["gpu"]
    assert "profiles" not in services["app"]
    devices = services["app-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_redis_keeps_the_failure_log_on_a_volume():
    redis = yaml.safe_load(COMPOSE.read_text())["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_mounted_files_exist():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source}"
    assert (
        json.loads((DOCKER / "grafana" / "dashboards" / "ocrguard.json").read_text())["uid"]
        == "ocrguard"
    )


def test_the_scale_profile_puts_replicas_in_upstream_mode_in_front_of_vllm(compose):
    result = run([*compose, "-f", str(COMPOSE), "--profile", "scale", "config"])
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    upstream = services["app-upstream"]
    assert upstream["deploy"]["replicas"] == 2
    assert upstream["environment"]["OCRGUARD_ENGINE"] == "openai"
    assert upstream["environment"]["OCRGUARD_UPSTREAM_URL"] == "http://vllm:8000/v1"
    assert upstream["environment"]["OCRGUARD_REDIS_URL"] == "redis://redis:6379/0"  # one Redis
    served = [c for c in services["vllm"]["command"] if c.startswith("--served-model-name=")]
    assert served == [f"--served-model-name={upstream['environment']['OCRGUARD_UPSTREAM_MODEL']}"]
    assert "profiles" in services["vllm"] and services["vllm"]["profiles"] == ["scale"]
    scrape = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    names = [
        n
        for job in scrape["scrape_configs"]
        for c in job.get("dns_sd_configs", [])
        for n in c["names"]
    ]
    assert "app-upstream" in names and "vllm" in names
