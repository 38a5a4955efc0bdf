"""The engine protocol: what the OCR service needs from a model runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from PIL import Image

from app.prompt import PagePrompt

FinishReason = Literal["stop", "length", "abort", "repetition"]
"""``stop``: the model ended; ``length``: the token limit; ``abort``: aborted (the guard or
the client); ``repetition``: the engine's own repetition check ended it (vLLM's)."""


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int = 1024
    """Most tokens to generate, the prefix excluded."""
    temperature: float = 0.0
    """0 is greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass (1: off)."""
    seed: int | None = None
    """Seed for sampled decoding, recorded so an attempt can be replayed."""

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    """Unique per engine call; ``abort`` takes it."""
    image: Image.Image
    prompt: PagePrompt
    """What the model is asked (the chat template is the engine's business)."""
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    prefix_token_ids: tuple[int, ...] = ()
    """Output tokens the generation continues from (recovery resumes after a rewind)."""
    banned_first_token_ids: frozenset[int] = frozenset()
    """Tokens that may not be generated at the first new step."""
    banned_sequences: tuple[tuple[int, ...], ...] = ()
    """Token sequences that may not be generated anywhere in the new output."""


@dataclass(frozen=True)
class TokenDelta:
    """One step of a streamed generation."""

    token_ids: tuple[int, ...]
    text: str
    """Text of ``token_ids``; empty while a character's bytes are incomplete."""
    logprobs: tuple[float, ...] | None = None
    """Each token's log-probability, when the runtime gives them."""
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    """Tokens of the prompt (image placeholders expanded), when the runtime tells."""


@runtime_checkable
class Engine(Protocol):
    """A model runtime that streams tokens for one page image at a time."""

    model_id: str
    revision: str
    max_concurrency: int

    @property
    def ready(self) -> bool: ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        """Stream the output. Closing the iterator aborts the request."""
        ...

    async def abort(self, request_id: str) -> None:
        """Stop a running request at the next token; unknown ids are ignored."""
        ...

    def decode(self, token_ids: tuple[int, ...] | list[int]) -> str: ...

    @property
    def can_resume(self) -> bool:
        """Whether a generation can continue from given output tokens (a rewind); an engine
        that cannot gets retries from scratch instead."""
        ...

    async def start(self) -> None:
        """Called once in the service's event loop before the first request."""
        ...

    def metrics(self) -> bytes:
        """The runtime's own Prometheus exposition, served after ocrguard's on ``/metrics``
        (vLLM's ``vllm:*`` series); empty when it has none."""
        ...

    async def close(self) -> None: ...


EngineErrorKind = Literal["failed", "unavailable", "timeout", "rejected"]


class EngineError(RuntimeError):
    """The engine could not serve a request. ``kind``: ``failed`` (it broke), ``unavailable``
    (it cannot be reached now: try again), ``timeout`` (it stopped answering), ``rejected``
    (it refused the request; ``status`` is its HTTP status when it has one)."""

    def __init__(
        self, message: str, kind: EngineErrorKind = "failed", status: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
