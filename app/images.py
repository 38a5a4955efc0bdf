"""Turns uploaded bytes into page images the model can read, refusing what it cannot."""

from __future__ import annotations

import hashlib
import io
import math
import re
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageOps

from .errors import InvalidImage, InvalidRequest, UnsupportedMediaType
from .page_lines import count_text_lines

MediaType = Literal["image/png", "image/jpeg", "image/tiff", "image/webp", "application/pdf"]

_MAGIC: tuple[tuple[bytes, int, MediaType], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"WEBP", 8, "image/webp"),
    (b"%PDF-", 0, "application/pdf"),
)

# PIL refuses images above twice this on its own; we check against our limit ourselves.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class Page:
    number: int
    """1-based page number (1 for a single image)."""
    image: Image.Image
    """RGB, EXIF-oriented, within the model's pixel budget."""
    text_lines: int | None = None
    """Text lines the image holds (app/page_lines.py): the guard's page evidence."""

    def png_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG", optimize=False)
        return buffer.getvalue()


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff(data: bytes) -> MediaType:
    """The media type from the bytes themselves, whatever the client claimed."""
    if not data:
        raise InvalidImage("the upload is empty")
    for magic, offset, media_type in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if media_type == "image/webp" and data[:4] != b"RIFF":
                continue
            return media_type
    raise UnsupportedMediaType("not a PNG, JPEG, TIFF, WebP image or a PDF")


def parse_page_range(spec: str | None, total: int) -> list[int]:
    """1-based pages selected by ``"1-3,5"`` (None: all of them)."""
    if not spec:
        return list(range(1, total + 1))
    pages: list[int] = []
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise InvalidRequest(f"pages: cannot read {part!r}; use e.g. '1-3,5'")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        if first < 1 or last < first or last > total:
            raise InvalidRequest(f"pages: {part.strip()!r} is outside 1-{total}")
        pages.extend(p for p in range(first, last + 1) if p not in pages)
    return pages


def load_pages(
    data: bytes,
    *,
    max_image_pixels: int,
    model_max_pixels: int,
    max_pdf_pages: int,
    pdf_dpi: int = 150,
    page_range: str | None = None,
) -> list[Page]:
    """Decode an upload into pages. 415 for what is not an image or PDF, 422 for what is
    broken, too big, or a PDF with more pages than allowed."""
    media_type = sniff(data)
    if media_type == "application/pdf":
        return _pdf_pages(
            data, max_image_pixels, model_max_pixels, max_pdf_pages, pdf_dpi, page_range
        )
    if page_range and page_range.strip() not in ("1", "1-1"):
        raise InvalidRequest("pages: an image has only page 1")
    image = _decode_image(data, max_image_pixels, model_max_pixels)
    return [Page(1, image, count_text_lines(image))]


def _decode_image(data: bytes, max_pixels: int, budget: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"cannot decode the image: {exc}") from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        # Checked before decoding: a few KB of PNG can claim gigapixels.
        raise InvalidImage(f"the image has {width}x{height} pixels, over the limit of {max_pixels}")
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"the image is corrupt or truncated: {exc}") from exc
    return _fit(_to_rgb(image), budget)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGB", rgba.size, "white")
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return image.convert("RGB")


def _fit(image: Image.Image, budget: int) -> Image.Image:
    """Downscale to at most ``budget`` pixels, keeping the aspect ratio."""
    width, height = image.size
    if width * height <= budget:
        return image
    scale = math.sqrt(budget / (width * height))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _pdf_pages(data, max_pixels, budget, max_pages, dpi, page_range) -> list[Page]:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise InvalidImage(f"cannot open the PDF: {exc}") from exc
    try:
        total = len(document)
        if total == 0:
            raise InvalidImage("the PDF has no pages")
        selected = parse_page_range(page_range, total)
        if len(selected) > max_pages:
            raise InvalidImage(
                f"the PDF selection has {len(selected)} pages, over the limit of {max_pages}; "
                "pass 'pages' to choose some"
            )
        pages = []
        for number in selected:
            page = document[number - 1]
            width, height = page.get_size()  # points
            scale = dpi / 72
            if width * height * scale * scale > max_pixels:
                scale = math.sqrt(max_pixels / (width * height))
            try:
                bitmap = page.render(scale=scale)
                image = bitmap.to_pil()
            except pypdfium2.PdfiumError as exc:
                raise InvalidImage(f"cannot render PDF page {number}: {exc}") from exc
            fitted = _fit(_to_rgb(image), budget)
            pages.append(Page(number, fitted, count_text_lines(fitted)))
        return pages
    finally:
        document.close()
