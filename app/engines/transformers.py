"""The transformers engine: the CPU default, one shared model, token-by-token in worker threads."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria

from app.detokenizer import IncrementalDetokenizer
from app.model_card import identify
from app.prompt import ChatPrompts

from .base import EngineError, GenerationRequest, TokenDelta

logger = logging.getLogger(__name__)

_DONE = object()


class TransformersEngine:
    """Runs ``generate`` in a worker thread per request and streams each new token back to
    the event loop. Abort is honoured between tokens through a stopping criterion. At most
    ``max_concurrency`` generations share the model at once; the rest wait their turn."""

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_concurrency: int = 1,
        revision: str | None = None,
        threads: int | None = None,
    ) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if threads:
            torch.set_num_threads(threads)
        path = str(model)
        local = Path(path).is_dir()
        identity = identify(path, revision)
        self.model_id, self.revision = identity.model_id, identity.revision
        self.max_concurrency = max_concurrency
        self._processor = AutoProcessor.from_pretrained(
            path, revision=revision, local_files_only=local
        )
        self._tokenizer = self._processor.tokenizer
        if dtype == "auto":  # CPUs compute in float32; weights may be stored in bfloat16
            dtype = "float32" if device == "cpu" else "auto"
        self._model = AutoModelForImageTextToText.from_pretrained(
            path,
            revision=revision,
            local_files_only=local,
            dtype=dtype if dtype == "auto" else getattr(torch, dtype),
        )
        self._model.to(device).eval()
        self._device = device
        self._slots = asyncio.Semaphore(max_concurrency)
        self._aborts: dict[str, threading.Event] = {}
        self._prompt = ChatPrompts(self._processor)
        self._closed = False

    @property
    def ready(self) -> bool:
        return not self._closed

    def decode(self, token_ids: tuple[int, ...] | list[int]) -> str:
        return self._tokenizer.decode(list(token_ids), skip_special_tokens=True)

    can_resume = True

    async def start(self) -> None:
        pass

    def metrics(self) -> bytes:
        return b""

    async def abort(self, request_id: str) -> None:
        event = self._aborts.get(request_id)
        if event is not None:
            event.set()

    async def close(self) -> None:
        self._closed = True
        for event in self._aborts.values():
            event.set()

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        if self._closed:
            raise EngineError("engine is shut down")
        async with self._slots:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue()
            stop = threading.Event()
            self._aborts[request.request_id] = stop
            worker = threading.Thread(
                target=self._run,
                args=(request, stop, loop, queue),
                name=f"generate-{request.request_id}",
                daemon=True,
            )
            worker.start()
            try:
                while True:
                    item = await queue.get()
                    if item is _DONE:
                        return
                    if isinstance(item, BaseException):
                        raise EngineError(f"generation failed: {item}") from item
                    yield item
            finally:
                # Client gone, guard tripped or finished: the worker stops at its next token.
                stop.set()
                await asyncio.to_thread(worker.join)
                self._aborts.pop(request.request_id, None)

    def _run(self, request, stop, loop, queue) -> None:
        def send(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        try:
            self._generate_blocking(request, stop, send)
        except BaseException as exc:  # the worker's boundary: hand the failure to the caller
            logger.exception("generation %s failed", request.request_id)
            send(exc)
        finally:
            send(_DONE)

    def _generate_blocking(self, request: GenerationRequest, stop: threading.Event, send) -> None:
        from transformers import LogitsProcessorList, StoppingCriteriaList

        inputs = self._processor(
            text=[self._prompt(request.prompt)], images=[request.image], return_tensors="pt"
        )
        if request.prefix_token_ids:
            prefix = torch.tensor([request.prefix_token_ids], dtype=inputs["input_ids"].dtype)
            inputs["input_ids"] = torch.cat([inputs["input_ids"], prefix], dim=1)
            inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
            if "mm_token_type_ids" in inputs:
                pad = torch.zeros_like(prefix)
                inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], pad], dim=1)
        inputs = inputs.to(self._device)
        start = inputs["input_ids"].shape[1]
        sampling = request.sampling
        eos = self._model.generation_config.eos_token_id
        recorder = _LogprobRecorder()
        streamer = _DeltaStreamer(self._tokenizer, request.prefix_token_ids, send, eos, recorder)
        processors: list[LogitsProcessor] = []
        if request.banned_first_token_ids:
            processors.append(_FirstStepBan(start, request.banned_first_token_ids))
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_AbortCriterion(stop)]),
            "logits_processor": LogitsProcessorList([*processors, recorder]),  # recorder last
        }
        if request.banned_sequences:
            kwargs["bad_words_ids"] = [list(s) for s in request.banned_sequences]
        if sampling.temperature > 0:
            kwargs.update(
                do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0
            )
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = self._model.generate(**inputs, **kwargs)
        generated = output.shape[1] - start
        if stop.is_set():
            reason = "abort"
        elif generated >= sampling.max_tokens and not streamer.saw_eos:
            reason = "length"
        else:
            reason = "stop"
        # An aborted generation may end inside a character: its bytes are dropped, not sent.
        tail = streamer.flush() if reason != "abort" else ""
        prompt_tokens = start - len(request.prefix_token_ids)
        send(TokenDelta((), tail, finish_reason=reason, prompt_tokens=prompt_tokens))


class _DeltaStreamer:
    """transformers streamer that turns each new token into a ``TokenDelta``."""

    def __init__(self, tokenizer, prefix_ids, send, eos, recorder: _LogprobRecorder) -> None:
        self._detok = IncrementalDetokenizer(tokenizer, prefix_ids)
        self._send = send
        self._recorder = recorder
        self._eos = set(eos) if isinstance(eos, list) else {eos}
        self._prompt_seen = False
        self.saw_eos = False

    def put(self, value) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        ids = [int(t) for t in value.reshape(-1).tolist()]
        if any(t in self._eos for t in ids):
            self.saw_eos = True
            ids = [t for t in ids if t not in self._eos]
            if not ids:
                return
        logprobs = self._recorder.of(ids)
        self._send(TokenDelta(tuple(ids), self._detok.push(ids), logprobs=logprobs))

    def end(self) -> None:
        pass

    def flush(self) -> str:
        return self._detok.flush()


class _LogprobRecorder(LogitsProcessor):
    """Keeps the last step's log-probabilities, read back when its token is streamed:
    ``generate`` runs the processors, picks the token, then hands it to the streamer. Last
    in the list, it sees the distribution the token was drawn from (vLLM's processed
    logprobs: temperature applied when sampling)."""

    def __init__(self) -> None:
        self._last = None

    def __call__(self, input_ids, scores):
        self._last = torch.log_softmax(scores[0].float(), dim=-1)
        return scores

    def of(self, ids: list[int]) -> tuple[float, ...] | None:
        if self._last is None or len(ids) != 1:
            return None
        return (float(self._last[ids[0]]),)


class _AbortCriterion(StoppingCriteria):
    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self._stop.is_set(), dtype=torch.bool)


class _FirstStepBan(LogitsProcessor):
    """Bans tokens at the first generated position only: the token that would start the
    next copy of a loop after a rewind."""

    def __init__(self, start: int, banned: frozenset[int]) -> None:
        self._start = start
        self._banned = sorted(banned)

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] == self._start:
            scores[:, self._banned] = float("-inf")
        return scores
