"""Request and response bodies of the OpenAI-compatible endpoints (Chat Completions, Models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.guard.policy import GuardMode


class ImageUrl(BaseModel):
    url: str = Field(..., description="A data: URL with base64 (remote URLs only if allowed).")
    detail: str | None = Field(None, description="Accepted and ignored.")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageUrl | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's Chat Completions request. Fields it does not use are accepted and ignored,
    as OpenAI clients send many; ``guard`` is ocrguard's own (send it as extra body)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(..., description="The served model's id (GET /v1/models).")
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="Same as max_tokens.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    n: int = Field(1, ge=1, description="Only 1: one transcription per page.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(
        None, ge=0, le=0, description="Only 0: engines give the chosen token's logprob."
    )
    guard: GuardMode | None = Field(
        None,
        description="ocrguard's guard mode for this request (default: the server's). With "
        "stream=true a loop cannot be taken back: recover acts as abort.",
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ocrguard"
    root: str | None = None
    revision: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ChatCompletion(BaseModel):
    """The answer (documentation of its shape; ``guard`` is ocrguard's report)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    guard: dict[str, Any]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody
