"""Peer loop rules, re-implemented from their published descriptions for side-by-side scoring.

Each rule gets the token ids and token texts of a whole output and answers the first token
index at which it would have fired (online rules) or whether it fires on the finished text
(post-hoc rules; they report the output's length, since they act only after generation).
These are our own re-implementations of described behaviour, not copies of the projects' code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class VllmRepetitionDetection:
    """vLLM ``SamplingParams.repetition_detection`` (``RepetitionDetectionParams``,
    vllm/sampling_params.py, v0.31 docs): stop when the last ``L`` tokens repeat
    ``min_count`` times back to back, for some ``min_pattern_size <= L <= max_pattern_size``.
    vLLM ships no default profile; llama.cpp's port (PR #26039) enables 16..1024 x 4."""

    min_pattern_size: int
    max_pattern_size: int
    min_count: int
    online: bool = True

    @property
    def name(self) -> str:
        return f"vllm L{self.min_pattern_size}-{self.max_pattern_size} x{self.min_count}"

    def first_trip(self, ids: Sequence[int], texts: Sequence[str]) -> int | None:
        k = self.min_count
        seen: dict[int, list[int]] = {}
        for i, token in enumerate(ids):
            n = i + 1
            earlier = seen.setdefault(token, [])
            # only sizes where the newest token matches the one `size` places back
            for p in reversed(earlier):
                size = i - p
                if size > self.max_pattern_size or size * k > n:
                    break
                if size < self.min_pattern_size:
                    continue
                tail = ids[n - size : n]
                if all(ids[n - c * size : n - (c - 1) * size] == tail for c in range(2, k + 1)):
                    return n
            earlier.append(i)
        return None


@dataclass(frozen=True)
class OllamaTokenRepeatLimit:
    """Ollama's runner aborts when the same token is generated ``limit`` times in a row
    (hard-coded 30, raised to 100 in ollama/ollama PR #18374 after false alarms on OCR
    dot leaders)."""

    limit: int = 100
    online: bool = True

    @property
    def name(self) -> str:
        return f"ollama same-token x{self.limit}"

    def first_trip(self, ids: Sequence[int], texts: Sequence[str]) -> int | None:
        run = 0
        for i, t in enumerate(ids):
            run = run + 1 if i and t == ids[i - 1] and texts[i].strip() else 1
            if run >= self.limit:
                return i + 1
        return None


@dataclass(frozen=True)
class MinerUNoRepeatNgram:
    """MinerU's VLM client (mineru-vl-utils) decodes with ``no_repeat_ngram_size=100``: a
    100-token n-gram may not occur twice. As a detector: the output trips where it
    would have had to repeat one (the ban acts there; it cannot say more)."""

    size: int = 100
    online: bool = True

    @property
    def name(self) -> str:
        return f"mineru no-repeat-{self.size}gram"

    def first_trip(self, ids: Sequence[int], texts: Sequence[str]) -> int | None:
        seen: set[tuple[int, ...]] = set()
        for i in range(self.size - 1, len(ids)):
            gram = tuple(ids[i - self.size + 1 : i + 1])
            if gram in seen:
                return i + 1
            seen.add(gram)
        return None


@dataclass(frozen=True)
class ChandraRepeatCheck:
    """Chandra's post-hoc ``detect_repeat_token`` (datalab-to/chandra, model util): on the
    finished text, for every suffix length ``s`` up to ``window/2`` characters, count how
    many times the last ``s`` characters repeat back to back; flag when the count exceeds
    ``base * (1 + scaling / s)``. It triggers a retry after the whole generation."""

    base_max_repeats: int = 4
    window: int = 500
    scaling: float = 3.0
    online: bool = False

    @property
    def name(self) -> str:
        return "chandra post-hoc repeat"

    def first_trip(self, ids: Sequence[int], texts: Sequence[str]) -> int | None:
        text = "".join(texts)
        for size in range(1, self.window // 2 + 1):
            if size > len(text):
                break
            unit = text[-size:]
            limit = int(self.base_max_repeats * (1 + self.scaling / size))
            count, pos = 0, len(text) - size
            while pos >= 0 and text[pos : pos + size] == unit:
                count += 1
                pos -= size
            if count > limit:
                return len(ids)
        return None


PEERS = (
    VllmRepetitionDetection(1, 256, 4),
    VllmRepetitionDetection(16, 1024, 4),
    OllamaTokenRepeatLimit(100),
    MinerUNoRepeatNgram(100),
    ChandraRepeatCheck(),
)
