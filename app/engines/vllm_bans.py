"""A vLLM logits processor that applies a rewind's bans by token id.

vLLM's ``bad_words`` takes words and re-tokenizes them without their leading space, so the
model's own token (`` AGUA``) slips through; ``logit_bias`` bans at every step, not only at
the first. This processor reads, per request, ``SamplingParams.extra_args[EXTRA_KEY]``:

- ``first``: token ids forbidden at the first generated step (the token that would open the
  loop's next copy right after the kept text);
- ``sequences``: token-id n-grams forbidden anywhere, their context including the end of
  the prompt (the kept prefix), as transformers' ``bad_words_ids`` does.

vLLM loads it in its engine process by name (``AsyncEngineArgs(logits_processors=[PATH])``).
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

PATH = "app.engines.vllm_bans:RewindBans"
EXTRA_KEY = "ocrguard_bans"


class _Bans:
    __slots__ = ("first", "sequences", "tail", "output")

    def __init__(self, first: list[int], sequences: list[list[int]], tail: list[int], output):
        self.first = first
        self.sequences = sequences
        self.tail = tail  # the prompt's last tokens: context of a sequence at the first steps
        self.output = output  # vLLM's live list of the request's generated tokens


class RewindBans(LogitsProcessor):
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        bans = (sampling_params.extra_args or {}).get(EXTRA_KEY)
        if bans is None:
            return
        first, sequences = bans.get("first", []), bans.get("sequences", [])
        if not all(isinstance(t, int) for t in first) or not all(
            seq and all(isinstance(t, int) for t in seq) for seq in sequences
        ):
            raise ValueError(f"{EXTRA_KEY}: token ids must be ints, sequences non-empty")

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self._rows: dict[int, _Bans] = {}

    def is_argmax_invariant(self) -> bool:
        return False  # it changes what greedy decoding picks

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self._rows, batch_update, _bans_of)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for row, bans in self._rows.items():
            output = bans.output
            if not output and bans.first:
                logits[row, bans.first] = float("-inf")
            for sequence in bans.sequences:
                head = sequence[:-1]
                if not head or _ends_with(bans.tail, output, head):
                    logits[row, sequence[-1]] = float("-inf")
        return logits


def _bans_of(params: Any, prompt_ids: list[int] | None, output_ids: list[int]) -> _Bans | None:
    bans = (params.extra_args or {}).get(EXTRA_KEY)
    if not bans:
        return None
    sequences = [list(s) for s in bans.get("sequences", [])]
    longest = max((len(s) for s in sequences), default=1)
    tail = list((prompt_ids or [])[-longest:])
    return _Bans(list(bans.get("first", [])), sequences, tail, output_ids)


def _ends_with(tail: list[int], output: list[int], head: list[int]) -> bool:
    """Whether prompt tail + output ends with ``head``, without copying the output."""
    n, have = len(head), len(output)
    if have >= n:
        return output[-n:] == head
    missing = n - have  # the first ``missing`` tokens of head must end the prompt
    return missing <= len(tail) and tail[-missing:] == head[:missing] and output == head[missing:]
