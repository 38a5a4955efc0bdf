"""Judges: score a candidate transcription of a page in [0, 1], or abstain with None.

``reference`` needs ground truth (1 - CER); ``llm`` asks any OpenAI-compatible chat endpoint
for a 0-10 grade; ``structural`` needs nothing (valid schema, no guard trip, sane length).
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

from app.guard import DEFAULT_CONFIG, GuardConfig, Verdict
from app.labeler import CHARACTERS, Tokenizer, label_text
from app.prompt import parse_output, transcription_of

from ..evaluation.cer import cer

logger = logging.getLogger(__name__)

JudgeName = Literal["reference", "llm", "structural"]
JUDGES: tuple[JudgeName, ...] = ("reference", "llm", "structural")


class Judge(Protocol):
    name: str

    def score(
        self, candidate: str, *, reference: str | None = None, image_png: bytes | None = None
    ) -> float | None:
        """How good ``candidate`` is as the page's transcription, in [0, 1]; None when
        this judge cannot tell (no reference, endpoint down)."""
        ...


@dataclass
class ReferenceJudge:
    """1 - CER of the candidate's text against the ground truth's."""

    name: str = "reference"

    def score(
        self, candidate: str, *, reference: str | None = None, image_png: bytes | None = None
    ) -> float | None:
        if reference is None:
            return None
        return 1.0 - cer(transcription_of(candidate), transcription_of(reference))


def degenerate(
    text: str, tokenizer: Tokenizer = CHARACTERS, config: GuardConfig = DEFAULT_CONFIG
) -> Verdict | None:
    """The guard's verdict on a finished output (None when it does not loop)."""
    return label_text(tokenizer, text, config)


@dataclass
class StructuralJudge:
    """0 unless the candidate parses as the schema and does not trip the guard; then 1,
    or 0.5 when its length is implausible (empty, or beyond ``max_chars``)."""

    tokenizer: Tokenizer = CHARACTERS
    max_chars: int = 20_000
    name: str = "structural"

    def score(
        self, candidate: str, *, reference: str | None = None, image_png: bytes | None = None
    ) -> float | None:
        if parse_output(candidate) is None:
            return 0.0
        if degenerate(candidate, self.tokenizer) is not None:
            return 0.0
        length = len(transcription_of(candidate))
        return 1.0 if 0 < length <= self.max_chars else 0.5


LLM_INSTRUCTION = (
    "You grade OCR transcriptions of document pages. The transcription is a JSON object "
    'with keys "header", "margin", "footer" and "text". Score it from 0 (useless: '
    "repeated text, garbage, wrong format) to 10 (a complete, faithful, well-formed "
    "transcription). Answer with the score only, as: Score: N"
)
_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*(\d+(?:[.,]\d+)?)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)(?:\s*/\s*10)?")


def parse_grade(answer: str) -> float | None:
    """The 0-10 grade in a judge's answer ("Score: 7", "7/10", "**8**", "I'd say 6.5"),
    preferring a labelled score, else the first number in range; None when there is none."""
    for pattern in (_SCORE, _NUMBER):
        for match in pattern.finditer(answer):
            value = float(match.group(1).replace(",", "."))
            if 0 <= value <= 10:
                return value
    return None


@dataclass
class LlmJudge:
    """Grades through ``POST {base_url}/chat/completions`` (OpenAI's format: vLLM, TGI,
    llama.cpp, Ollama and hosted APIs all speak it)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "judge"
    api_key: str | None = None
    send_image: bool = True
    timeout_seconds: float = 60.0
    name: str = "llm"
    _client: object = field(default=None, repr=False)

    def score(
        self, candidate: str, *, reference: str | None = None, image_png: bytes | None = None
    ) -> float | None:
        import httpx

        if self._client is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._client = httpx.Client(timeout=self.timeout_seconds, headers=headers)
        content: list[dict] = []
        if self.send_image and image_png is not None:
            url = "data:image/png;base64," + base64.b64encode(image_png).decode("ascii")
            content.append({"type": "image_url", "image_url": {"url": url}})
        text = f"Transcription:\n{candidate}"
        if reference is not None:
            text = f"Ground truth:\n{reference}\n\n{text}"
        content.append({"type": "text", "text": text})
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": LLM_INSTRUCTION},
                {"role": "user", "content": content},
            ],
            "temperature": 0,
            "max_tokens": 16,
        }
        url = self.base_url.rstrip("/") + "/chat/completions"
        try:
            response = self._client.post(url, json=body)
            response.raise_for_status()
            answer = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            logger.warning("llm judge at %s failed: %s", url, exc)
            return None
        grade = parse_grade(answer)
        if grade is None:
            logger.warning("llm judge gave no grade: %r", answer[:200])
            return None
        return grade / 10


def make_judge(
    name: JudgeName,
    *,
    tokenizer: Tokenizer = CHARACTERS,
    llm_url: str = "http://127.0.0.1:8000/v1",
    llm_model: str = "judge",
    llm_api_key: str | None = None,
) -> Judge:
    if name == "reference":
        return ReferenceJudge()
    if name == "structural":
        return StructuralJudge(tokenizer)
    if name == "llm":
        return LlmJudge(llm_url, llm_model, llm_api_key)
    raise ValueError(f"unknown judge {name!r}; choose from {', '.join(JUDGES)}")


__all__ = [
    "JUDGES",
    "Judge",
    "LlmJudge",
    "ReferenceJudge",
    "StructuralJudge",
    "degenerate",
    "make_judge",
    "parse_grade",
]
