"""Corrections and the review queue: feedback on any served page, the logged failures, images."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from redis.exceptions import RedisError, ResponseError

from app.errors import InvalidRequest, NotFound, StoreUnavailable
from app.failure_record import Correction
from app.images import image_sha256, load_pages

from .deps import ReviewDep, ServiceDep, SettingsDep, require_key
from .errors import responses
from .schemas import Feedback, FeedbackStored

router = APIRouter(tags=["corrections"])

_UNAVAILABLE = "Redis is unavailable: corrections cannot be stored or listed now (Retry-After)"


@router.post(
    "/v1/ocr/{request_id}/feedback",
    dependencies=[Depends(require_key)],
    status_code=202,
    response_model=FeedbackStored,
    responses=responses(400, 401, 404, 413, 422, 503),
    summary="Store a corrected transcription of one page (a future DPO chosen example)",
)
async def feedback(
    request_id: str,
    correction: Feedback,
    service: ServiceDep,
    review: ReviewDep,
    settings: SettingsDep,
) -> FeedbackStored:
    await service.page_log.settled(request_id)  # its records may still be on their way
    try:
        served = await review.served(request_id)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(_UNAVAILABLE, headers={"Retry-After": "5"}) from exc
    if served is None:
        raise NotFound(f"request {request_id} is unknown here, or its record has expired")
    if correction.page not in served.outputs:
        raise InvalidRequest(f"page: request {request_id} has pages {sorted(served.outputs)}")
    image_png, sha = None, served.images.get(correction.page, "")
    if correction.image is not None:
        image_png = _page_png(correction.image, settings)
        sha = image_sha256(image_png)
    record = Correction(
        request_id=request_id,
        page=correction.page,
        fields=correction.corrected(),
        output=served.outputs[correction.page],
        model_id=served.model_id,
        model_revision=served.model_revision,
        prompt=served.prompt.text,
        prompt_system=served.prompt.system,
        prompt_image_first=served.prompt.image_first,
        image_sha256=sha,
        note=correction.note,
    )
    try:
        await review.store_correction(record, image_png)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(_UNAVAILABLE, headers={"Retry-After": "5"}) from exc
    return FeedbackStored(request_id=request_id, page=correction.page, with_image=bool(sha))


@router.get(
    "/v1/failures",
    dependencies=[Depends(require_key)],
    responses=responses(401, 422, 503),
    summary="The newest failure records, for the review queue",
)
async def failures(
    review: ReviewDep,
    limit: int = Query(20, ge=1, le=200),
    before: str | None = Query(
        None, pattern=r"^(0|[1-9]\d{0,18})-(0|[1-9]\d{0,18})$", description="a stream entry id"
    ),
) -> dict:
    """Each logged trip with its loop marked (character offsets into ``output``), what the
    request returned, the correction if one was sent, and its image's URL. ``pairs_ready``
    counts the listed records that already have a trusted chosen: a correction, or a
    recovered output."""
    try:
        found = await review.recent_failures(limit, before)
        corrections = await review.corrections_count()
    except ResponseError as exc:  # Redis refused the id: nothing comes before it
        raise InvalidRequest(f"before: {exc}") from exc
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(_UNAVAILABLE, headers={"Retry-After": "5"}) from exc
    items = []
    for entry_id, record, corrected in found["items"]:
        items.append(
            {
                "id": entry_id,
                "request_id": record.request_id,
                "page": record.page,
                "time": record.time,
                "model": {"id": record.model_id, "revision": record.model_revision},
                "verdict": record.verdict,
                "attempt": record.attempt,
                "output": record.output,
                "onset_chars": record.onset_chars,
                "repeat_chars": record.repeat_chars,
                "recovered": record.recovered,
                "final_output": record.final_output,
                "correction": corrected,
                "image_url": f"/v1/images/{record.image_sha256}",
            }
        )
    ready = sum(1 for i in items if i["correction"] or i["recovered"])
    return {
        "total": found["total"],
        "corrections": corrections,
        "pairs_ready": ready,
        "items": items,
    }


@router.get(
    "/v1/images/{sha256}",
    dependencies=[Depends(require_key)],
    responses={200: {"content": {"image/png": {}}}, **responses(401, 404, 503)},
    response_class=Response,
    summary="A stored page image (PNG)",
)
async def image(sha256: str, review: ReviewDep) -> Response:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("no such image")
    try:
        png = await review.image(sha256)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(_UNAVAILABLE, headers={"Retry-After": "5"}) from exc
    if png is None:
        raise NotFound("the image has expired or was never stored")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


def _page_png(value: str, settings) -> bytes:
    """The uploaded page image, checked as an OCR upload is, as PNG."""
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"image: not valid base64 ({exc})") from exc
    [page] = load_pages(
        data,
        max_image_pixels=settings.max_image_pixels,
        model_max_pixels=settings.model_max_pixels,
        max_pdf_pages=1,
        page_range="1",
    )
    return page.png_bytes()
