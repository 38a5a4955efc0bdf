"""Model runtimes behind one protocol; ``load_engine`` picks one from the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Engine, EngineError, GenerationRequest, SamplingOptions, TokenDelta

if TYPE_CHECKING:
    from app.config import Settings

__all__ = [
    "Engine",
    "EngineError",
    "GenerationRequest",
    "SamplingOptions",
    "TokenDelta",
    "load_engine",
]


def load_engine(settings: Settings) -> Engine:
    """Build the configured engine; heavy imports happen only here."""
    if settings.engine == "openai":
        from .openai import UpstreamEngine

        return UpstreamEngine.from_settings(settings)
    if settings.engine == "vllm":
        from .vllm import VllmEngine

        return VllmEngine.from_settings(settings)
    from .transformers import TransformersEngine

    return TransformersEngine(
        settings.model,
        device=settings.device,
        dtype=settings.dtype,
        revision=settings.model_revision,
        max_concurrency=settings.max_concurrency,
        threads=settings.torch_threads,
    )
