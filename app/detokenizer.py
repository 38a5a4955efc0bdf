"""Turns a growing list of token ids into text deltas that never split a character."""

from __future__ import annotations

from typing import Protocol


class Decoder(Protocol):
    def decode(self, token_ids: list[int], skip_special_tokens: bool = ...) -> str: ...


_INCOMPLETE = "\ufffd"
# Byte-level BPE can need a few tokens of left context to decode a character's bytes
# correctly; decoding from this many tokens back keeps each step O(1).
_CONTEXT_TOKENS = 6


class IncrementalDetokenizer:
    """Decodes only a small window per step (the prefix/read offsets technique used by
    text-generation-inference and vLLM) and holds a delta back while it ends in an
    incomplete UTF-8 sequence, so streamed text is always whole characters."""

    def __init__(self, tokenizer: Decoder, prefix_ids: list[int] | tuple[int, ...] = ()) -> None:
        self._tokenizer = tokenizer
        self.ids: list[int] = list(prefix_ids)
        self._read = len(self.ids)
        self._prefix = max(0, self._read - _CONTEXT_TOKENS)

    def push(self, new_ids: list[int] | tuple[int, ...]) -> str:
        self.ids.extend(new_ids)
        decode = self._tokenizer.decode
        before = decode(self.ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self.ids[self._prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith(_INCOMPLETE):
            delta = after[len(before) :]
            self._read = len(self.ids)
            self._prefix = max(0, self._read - _CONTEXT_TOKENS)
            return delta
        return ""

    def flush(self) -> str:
        """Whatever is held back at the end of a generation (may hold U+FFFD)."""
        decode = self._tokenizer.decode
        before = decode(self.ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self.ids[self._prefix :], skip_special_tokens=True)
        self._read = len(self.ids)
        return after[len(before) :]
