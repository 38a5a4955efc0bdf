"""The service's settings, read once from OCRGUARD_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .failure_record import RedisKeys
from .guard.policy import GuardMode
from .guard.recovery import Strategy

REPO_ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_MODEL = REPO_ROOT / "models" / "ocrguard-tiny"


class Settings(BaseSettings):
    """Every knob of the service. Defaults run on a laptop with the embedded model."""

    model_config = SettingsConfigDict(env_prefix="OCRGUARD_", extra="ignore")

    model: str = Field(str(EMBEDDED_MODEL), description="Local model folder or HF model id.")
    model_revision: str | None = Field(
        None, description="HF revision (branch, tag or commit) of a hub model; reported as served."
    )
    engine: Literal["transformers", "vllm", "openai"] = Field(
        "transformers",
        description="Model runtime: transformers (CPU default), vllm (in-process), openai (an "
        "OpenAI-compatible server at OCRGUARD_UPSTREAM_URL).",
    )
    upstream_url: str | None = Field(
        None, description="engine=openai: the server's API base, e.g. http://vllm:8000/v1."
    )
    upstream_api_key: str | None = Field(None, description="engine=openai: bearer token sent.")
    upstream_model: str | None = Field(
        None, description="engine=openai: model name to ask for (None: the first it lists)."
    )
    upstream_tokenizer: str | None = Field(
        None,
        description="engine=openai: local folder or cached hub id of the model's tokenizer, so "
        "the guard reads its tokens; None: the guard reads characters.",
    )
    upstream_timeout_seconds: float = Field(
        60.0, gt=0, description="engine=openai: longest wait for the next streamed chunk (504)."
    )
    device: str = Field("cpu", description="torch device for the transformers engine.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Compute dtype; auto: float32 on a CPU, the model's own dtype elsewhere "
        "(released weights are stored in bfloat16).",
    )
    torch_threads: int | None = Field(
        None, description="torch CPU threads (None: torch's default)."
    )
    max_concurrency: int = Field(1, ge=1, description="Generations running at once.")
    max_queue: int = Field(
        8, ge=0, description="Requests allowed to wait for a generation slot; beyond: 503."
    )
    max_tokens: int = Field(1024, ge=1, description="Default and ceiling of max_tokens per page.")
    vllm_max_model_len: int | None = Field(
        None, ge=1, description="vLLM max model length (prompt + output); None: the model's."
    )
    vllm_gpu_memory_utilization: float = Field(
        0.85, gt=0, le=1, description="vLLM GPU memory fraction (GPUs only)."
    )
    vllm_kv_cache_bytes: int | None = Field(
        None,
        ge=1 << 20,
        description="vLLM KV cache size in bytes; None: 1 GiB on a CPU, the memory fraction "
        "on a GPU.",
    )
    vllm_enforce_eager: bool | None = Field(
        None, description="vLLM without graph capture/compilation; None: on a CPU only."
    )

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for the failure log.")
    stream_key: str = Field("ocrguard:failures", description="Redis Stream of failure records.")
    stream_maxlen: int = Field(
        100_000, ge=1, description="Approximate cap of the stream (MAXLEN ~)."
    )
    key_prefix: str = Field("ocrguard:", description="Prefix of every other Redis key.")
    image_ttl_seconds: int = Field(30 * 86400, ge=1, description="TTL of stored page images.")
    record_ttl_seconds: int = Field(
        30 * 86400,
        ge=1,
        description="TTL of a logged request's marker and of its corrections (feedback).",
    )
    redis_timeout_seconds: float = Field(0.5, gt=0, description="Redis socket timeout.")
    buffer_max_records: int = Field(
        10_000, ge=1, description="Failure records kept in memory while Redis is down."
    )
    buffer_max_bytes: int = Field(
        256 * 2**20, ge=1, description="Memory the outage buffer may hold."
    )
    flush_interval_seconds: float = Field(
        1.0, gt=0, description="How often the buffer retries Redis."
    )

    max_body_bytes: int = Field(20 * 2**20, ge=1, description="Largest request body (413 above).")
    max_image_pixels: int = Field(
        50_000_000, ge=1, description="Largest decoded image (422 above)."
    )
    max_pdf_pages: int = Field(20, ge=1, description="Most PDF pages per request (422 above).")
    pdf_dpi: int = Field(150, ge=36, le=600, description="Rasterization resolution of PDF pages.")
    model_max_pixels: int = Field(
        448 * 448, ge=28 * 28, description="Pixel budget pages are downscaled to."
    )

    # NoDecode: read "k1,k2" as text (split below), not as a JSON list
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted API keys, comma-separated; empty: no auth."
    )
    public_health: bool = Field(True, description="/healthz and /readyz without a key.")
    public_metrics: bool = Field(True, description="/metrics without a key.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="In-flight requests' time to finish on SIGTERM."
    )

    drain_seconds: float = Field(
        2.0,
        ge=0,
        description="On SIGTERM, seconds /readyz fails before the server stops accepting.",
    )

    guard_strategy: Strategy = Field(
        "retry", description="Recovery strategy (bench/recovery.py: retry gave the better text)."
    )
    guard_max_attempts: int = Field(
        3, ge=1, description="Generations per page under guard=recover."
    )
    keep_clean_pages: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of clean pages kept (image and output) for retraining: a page the "
        "model reads cleanly greedily may still loop when sampled, and those loops make DPO "
        "pairs too.",
    )
    served_model_name: str | None = Field(
        None,
        description="Another name the OpenAI endpoint answers to and lists (e.g. olmocr, the "
        "name olmOCR's pipeline sends).",
    )
    chat_guard: GuardMode = Field(
        "recover", description="Guard mode of /v1/chat/completions when a request sets none."
    )
    allow_remote_images: bool = Field(
        False, description="Let /v1/chat/completions fetch http(s) image URLs (else 400)."
    )
    remote_image_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest fetch of a remote image (its size limit: max_body_bytes)."
    )
    log_level: str = Field("INFO", description="Logging level.")

    @property
    def redis_keys(self) -> RedisKeys:
        return RedisKeys(prefix=self.key_prefix, stream=self.stream_key)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("upstream_url")
    @classmethod
    def _check_upstream_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                "OCRGUARD_UPSTREAM_URL must be an http(s) URL such as http://host:8000/v1"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("OCRGUARD_REDIS_URL must start with redis://, rediss:// or unix://")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
