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
    image: str = Field(..., min_length=1, description="Base64 of the image or PDF, or a data: URL.")


_CORRECTED = ("header", "margin", "footer", "text")


class Feedback(BaseModel):
    """A corrected transcription of one page of a served request: the *chosen* side of the
    next DPO pairs. At least one of header, margin, footer, text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [{"required": [f], "properties": {f: {"type": "string"}}} for f in _CORRECTED]
        },
    )

    page: int = Field(1, ge=1)
    header: str | None = None
    margin: str | None = None
    footer: str | None = None
    text: str | None = None
    note: str | None = Field(None, max_length=2000)
    image: str | None = Field(
        None,
        description="Base64 (or a data: URL) of the page image, for a page the guard did not "
        "catch (the server keeps images of caught pages only): the correction then makes a "
        "pair too.",
    )

    @model_validator(mode="after")
    def _something(self) -> Feedback:
        if all(getattr(self, f) is None for f in _CORRECTED):
            raise ValueError("give at least one of header, margin, footer, text")
        return self

    def corrected(self) -> dict[str, str]:
        return {f: getattr(self, f) or "" for f in _CORRECTED}


class FeedbackStored(BaseModel):
    request_id: str
    page: int
    status: str = "stored"
    with_image: bool = Field(..., description="Whether the page image is stored with it.")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error of ocrguard's own API."""

    error: ErrorBody
