"""The offline labeler: a finished output read token by token as the service streams it, and
the guard's verdict on it. The CLI, evaluation, candidates, judges and benches all label here,
so an offline label is the label the live guard would have given."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from .detokenizer import IncrementalDetokenizer
from .guard import DEFAULT_CONFIG, GuardConfig, Verdict, scan


class Tokenizer(Protocol):
    """What the labeler needs of a tokenizer (a Hugging Face one fits)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: list[int], skip_special_tokens: bool = ...) -> str: ...


class CharacterTokenizer:
    """One token per character (its code point): the stand-in where no model tokenizer can
    be loaded. The guard's thresholds count tokens, so a character stream needs more
    copies of a short unit than a BPE stream of the same text; loops still trip."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, token_ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in token_ids)


CHARACTERS = CharacterTokenizer()


@dataclass(frozen=True)
class Label:
    """The guard's reading of one finished output."""

    token_ids: list[int]
    """The output's tokens, cut at the first end-of-sequence token."""
    verdict: Verdict | None
    """The guard's verdict (None: no loop)."""
    hit_limit: bool
    """The output ran to the token limit without ending."""

    @property
    def degenerate(self) -> bool:
        """The DPO paper's definition: the output loops or never ends."""
        return self.verdict is not None or self.hit_limit


def until_eos(
    token_ids: Sequence[int], eos: int | Collection[int] | None
) -> tuple[list[int], bool]:
    """``token_ids`` up to the first end-of-sequence token, and whether there was one."""
    stops = {eos} if isinstance(eos, int) else set(eos or ())
    for n, token in enumerate(token_ids):
        if token in stops:
            return list(token_ids[:n]), True
    return list(token_ids), False


def stream_texts(tokenizer: Tokenizer, token_ids: Sequence[int]) -> list[str]:
    """Each token's text as a stream delivers it: whole characters only, so a token that
    ends inside a character has empty text and the next one carries it."""
    detokenizer = IncrementalDetokenizer(tokenizer)
    return [detokenizer.push([t]) for t in token_ids]


def label_ids(
    tokenizer: Tokenizer,
    token_ids: Sequence[int],
    *,
    eos: int | Collection[int] | None = None,
    max_tokens: int | None = None,
    config: GuardConfig = DEFAULT_CONFIG,
    page_lines: int | None = None,
) -> Label:
    """Label generated token ids (cut at ``eos``); ``max_tokens`` is the generation's limit,
    so that an output that reached it without ending counts as degenerate. ``page_lines``:
    the page's evidence, as the live guard has it (app/page_lines.py), when known."""
    ids, ended = until_eos(token_ids, eos)
    hit_limit = not ended and max_tokens is not None and len(ids) >= max_tokens
    # an output cut at the limit ends inside its last line; one that ended, on a finished line
    verdict = scan(ids, stream_texts(tokenizer, ids), config, page_lines, finished=not hit_limit)
    return Label(ids, verdict, hit_limit)


def label_text(
    tokenizer: Tokenizer,
    text: str,
    config: GuardConfig = DEFAULT_CONFIG,
    page_lines: int | None = None,
) -> Verdict | None:
    """The guard's verdict on a text, tokenized as the model would have written it;
    ``page_lines`` as in ``label_ids``."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return scan(ids, stream_texts(tokenizer, ids), config, page_lines)
