"""Failure records, snapshots and images for the retraining tests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from app.failure_record import FailureRecord
from app.prompt import OCR_INSTRUCTION, PROMPT_VERSION, PageFields

LOOP = '{"header": "", "margin": "", "footer": "", "text": "Nota Nota Nota Nota Nota Nota Nota'
CLEAN = PageFields(text="Nota fiscal nº 123").to_json()
# Parses as the schema but loops: the guard trips on it, even character by character.
LOOPING_JSON = PageFields(text="Nota 123 " * 40).to_json()


def page_png(seed: int) -> bytes:
    """A small noisy page (not blank: a white page normalises to zeros)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (56, 56, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def record(request_id: str, page: int = 1, attempt: int = 1, **overrides) -> FailureRecord:
    values = {
        "request_id": request_id,
        "page": page,
        "model_id": "ocrguard-tiny",
        "model_revision": "test",
        "prompt_version": PROMPT_VERSION,
        "prompt": OCR_INSTRUCTION,
        "guard_version": "test",
        "guard_mode": "recover",
        "image_sha256": f"sha-{request_id}-{page}",
        "attempt": attempt,
        "sampling": {"temperature": 0.0, "seed": 0},
        "output": LOOP,
        "output_token_ids": [1, 2, 3],
        "verdict": {"kind": "token_run", "period": 1, "onset": 5, "repeats": 20, "trip_at": 30},
        **overrides,
    }
    return FailureRecord(**values)


def write_snapshot(folder: Path, lines: list[tuple[FailureRecord, dict | None]]) -> Path:
    """A snapshot folder as ``export`` writes it, one image per record."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    with (folder / "records.jsonl").open("w", encoding="utf-8") as f:
        for n, (rec, feedback) in enumerate(lines):
            image = f"images/{rec.image_sha256}.png"
            (folder / image).write_bytes(page_png(n))
            line = {
                "stream_id": f"{n}-0",
                "record": rec.__dict__,
                "feedback": feedback,
                "image": image,
            }
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return folder


def write_kept_pages(folder: Path, request_ids: list[str], output: str = CLEAN) -> Path:
    """Kept clean pages (``pages.jsonl``) as ``export`` writes them, one image each."""
    from app.failure_record import PageSample

    (folder / "images").mkdir(parents=True, exist_ok=True)
    with (folder / "pages.jsonl").open("a", encoding="utf-8") as f:
        for n, request_id in enumerate(request_ids):
            image = f"images/kept-{request_id}.png"
            (folder / image).write_bytes(page_png(100 + n))
            sample = PageSample(
                request_id,
                1,
                "ocrguard-tiny",
                "test",
                OCR_INSTRUCTION,
                None,
                True,
                f"kept-{request_id}",
                output,
            )
            f.write(
                json.dumps({"stream_id": f"{n}-1", "sample": sample.__dict__, "image": image})
                + "\n"
            )
    return folder
