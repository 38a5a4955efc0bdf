"""Request bodies and options of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.guard.policy import GuardMode


class OcrOptions(BaseModel):
    """Options of ``POST /v1/ocr``, as JSON keys or multipart form fields."""

    model_config = ConfigDict(extra="forbid")

    stream: bool = Field(False, description="Answer with Server-Sent Events.")
    max_tokens: int | None = Field(
        None, ge=1, description="Most tokens per page (server ceiling applies)."
    )
    guard: GuardMode = Field("recover", description="off | detect | abort | recover.")
    pages: str | None = Field(None, description="PDF pages, e.g. '1-3,5' (default: all).")
    seed: int = Field(0, description="Seed of sampled recovery attempts.")


class OcrJsonRequest(OcrOptions):
    image: str = Field(..., description="Base64 of the image or PDF, or a data: URL.")


class Feedback(BaseModel):
    """A corrected transcription of one page of a logged request."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(1, ge=1)
    header: str | None = None
    margin: str | None = None
    footer: str | None = None
    text: str | None = None
    note: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _something(self) -> Feedback:
        if all(getattr(self, f) is None for f in ("header", "margin", "footer", "text")):
            raise ValueError("give at least one of header, margin, footer, text")
        return self
