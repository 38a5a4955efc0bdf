"""Reads an OCR request (multipart upload or JSON) into validated options and pages."""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from app.config import Settings
from app.errors import InvalidRequest, UnsupportedMediaType
from app.images import Page, load_pages

from .schemas import OcrJsonRequest, OcrOptions


async def read_ocr_request(request: Request, settings: Settings) -> tuple[OcrOptions, list[Page]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        options, data = await _read_multipart(request)
    elif content_type.startswith("application/json"):
        options, data = await _read_json(request)
    else:
        raise UnsupportedMediaType(
            "send multipart/form-data with a 'file', or JSON with an 'image'"
        )
    if options.max_tokens is not None and options.max_tokens > settings.max_tokens:
        raise InvalidRequest(f"max_tokens: at most {settings.max_tokens} on this server")
    pages = load_pages(
        data,
        max_image_pixels=settings.max_image_pixels,
        model_max_pixels=settings.model_max_pixels,
        max_pdf_pages=settings.max_pdf_pages,
        pdf_dpi=settings.pdf_dpi,
        page_range=options.pages,
    )
    return options, pages


async def _read_multipart(request: Request) -> tuple[OcrOptions, bytes]:
    try:
        form = await request.form(max_files=1, max_fields=16)
    except HTTPException as exc:  # Starlette's 400 for a malformed or oversized multipart body
        raise InvalidRequest(f"multipart body: {exc.detail}") from exc
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("multipart body needs a 'file' part with the image or PDF")
        fields = {k: v for k, v in form.multi_items() if k != "file"}
        options = _validate(OcrOptions, fields)
        return options, await upload.read()
    finally:
        await form.close()


async def _read_json(request: Request) -> tuple[OcrOptions, bytes]:
    try:
        payload = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("the JSON body must be an object with an 'image' key")
    body = _validate(OcrJsonRequest, payload)
    data = decode_base64(body.image)
    return OcrOptions(**body.model_dump(exclude={"image"})), data


def _validate(model, values):
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidRequest(problems) from exc


def decode_base64(value: str, field: str = "image") -> bytes:
    """Base64 bytes, bare or as a ``data:`` URL (a clear 400 when they are neither)."""
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if ";base64" not in header:
            raise InvalidRequest(f"{field}: a data: URL must be base64-encoded")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{field}: not valid base64 ({exc})") from exc
