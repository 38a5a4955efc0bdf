"""Reads a Chat Completions request into an OCR request: one page image, the client's prompt."""

from __future__ import annotations

import asyncio

import httpx

from app.config import Settings
from app.errors import InvalidRequest, PayloadTooLarge
from app.images import load_pages
from app.ocr_service import OcrRequest
from app.prompt import PagePrompt

from .chat_schemas import ChatCompletionRequest
from .inputs import decode_base64


async def read_chat_request(
    chat: ChatCompletionRequest, settings: Settings, served: set[str]
) -> OcrRequest:
    if chat.model not in served:
        raise ModelNotFound(f"model {chat.model!r} is not served here; GET /v1/models lists it")
    if chat.n != 1:
        raise InvalidRequest("n: only 1 is supported (one transcription per page)")
    max_tokens = chat.max_completion_tokens or chat.max_tokens or settings.max_tokens
    if max_tokens > settings.max_tokens:
        raise InvalidRequest(f"max_tokens: at most {settings.max_tokens} on this server")
    prompt, url = page_prompt(chat)
    data = await image_bytes(url, settings)
    pages = load_pages(
        data,
        max_image_pixels=settings.max_image_pixels,
        model_max_pixels=settings.model_max_pixels,
        max_pdf_pages=1,
        pdf_dpi=settings.pdf_dpi,
    )
    mode = chat.guard or settings.chat_guard
    if chat.stream and mode == "recover":
        mode = "abort"  # streamed text cannot be taken back: stop at the loop instead
    ocr = OcrRequest(
        pages=pages,
        mode=mode,
        max_tokens=max_tokens,
        seed=chat.seed or 0,
        prompt=prompt,
        temperature=chat.temperature if chat.temperature is not None else 0.0,
        top_p=chat.top_p or 1.0,
    )
    return ocr


class ModelNotFound(InvalidRequest):
    code, status = "model_not_found", 404


def page_prompt(chat: ChatCompletionRequest) -> tuple[PagePrompt, str]:
    """The client's prompt as it sent it, and the URL of its one page image. One user turn
    (with an optional system message before it) holding exactly one image."""
    system = [m for m in chat.messages if m.role in ("system", "developer")]
    users = [m for m in chat.messages if m.role == "user"]
    if len(users) != 1 or any(m.role == "assistant" for m in chat.messages):
        raise InvalidRequest("messages: one user turn with the page image (no conversation)")
    content = users[0].content
    parts = content if isinstance(content, list) else []
    images = [p for p in parts if p.type == "image_url" and p.image_url is not None]
    if len(images) != 1:
        raise InvalidRequest(
            f"messages: the user turn needs exactly one image_url part, it has {len(images)}"
        )
    texts = [p.text or "" for p in parts if p.type == "text"]
    if isinstance(content, str):
        texts = [content]
    first_text = next((n for n, p in enumerate(parts) if p.type == "text"), len(parts))
    system_text = "\n".join(_text(m.content) for m in system) if system else None
    prompt = PagePrompt(
        text="".join(texts),
        system=system_text,
        image_first=parts.index(images[0]) < first_text,
    )
    return prompt, images[0].image_url.url  # type: ignore[union-attr]


def _text(content) -> str:
    if isinstance(content, str) or content is None:
        return content or ""
    return "".join(p.text or "" for p in content if p.type == "text")


async def image_bytes(url: str, settings: Settings) -> bytes:
    if url.startswith("data:"):
        return decode_base64(url, "image_url")
    if not url.startswith(("http://", "https://")):
        raise InvalidRequest("image_url: a data: URL, or http(s) where the server allows it")
    if not settings.allow_remote_images:
        raise InvalidRequest(
            "image_url: remote URLs are refused on this server (send the image as a data: URL; "
            "OCRGUARD_ALLOW_REMOTE_IMAGES=true allows them)"
        )
    return await _fetch(url, settings.max_body_bytes, settings.remote_image_timeout_seconds)


async def _fetch(url: str, limit: int, timeout: float) -> bytes:
    """The image at ``url``, at most ``limit`` bytes and ``timeout`` seconds in all."""
    chunks, size = [], 0
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=3) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise InvalidRequest(f"image_url: {url} answered {response.status_code}")
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"image_url: {url} is over {limit} bytes")
                chunks.append(chunk)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise InvalidRequest(f"image_url: cannot fetch {url}: {exc!r}") from exc
    return b"".join(chunks)
