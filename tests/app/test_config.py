"""Settings come from OCRGUARD_* variables, with errors that name the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


def test_api_keys_from_a_comma_separated_variable(monkeypatch):
    monkeypatch.setenv("OCRGUARD_API_KEYS", "k1, k2,")
    assert Settings().api_keys == ["k1", "k2"]
    monkeypatch.setenv("OCRGUARD_API_KEYS", "")
    assert Settings().api_keys == []


def test_bad_redis_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("OCRGUARD_REDIS_URL", "localhost:6379")
    with pytest.raises(ValidationError, match="OCRGUARD_REDIS_URL"):
        Settings()


def test_defaults_work_on_a_laptop():
    settings = Settings()
    assert settings.engine == "transformers" and settings.device == "cpu"
    assert settings.max_body_bytes == 20 * 2**20
