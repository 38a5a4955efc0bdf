"""The vLLM engine: in-process ``AsyncLLM`` (vLLM's v1 API; its CPU build runs it here too).

A guard trip calls ``AsyncLLM.abort`` so the request's KV cache and batch slot are freed at
once. A resumed attempt is sent as token ids (the prompt's, with its one unexpanded image
placeholder, then the kept output), so the kept text is not re-tokenized, and its bans go
by token id through ``vllm_bans.RewindBans``. Tested against real vLLM in
``tests/app/engines/test_vllm.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from app.model_card import identify
from app.prompt import ChatPrompts, PagePrompt

from .base import EngineError, FinishReason, GenerationRequest, TokenDelta

if TYPE_CHECKING:
    from app.config import Settings

logger = logging.getLogger(__name__)

# vLLM's finish reasons (vllm/v1/engine FINISH_REASON_STRINGS) onto the protocol's;
# "error" is not a finish but a failure, raised as EngineError.
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "abort": "abort",
    "repetition": "repetition",
}


class VllmEngine:
    """Streams DELTA outputs of ``AsyncLLM.generate`` as ``TokenDelta``s."""

    def __init__(
        self,
        llm: Any,
        processor: Any,
        *,
        model_id: str,
        revision: str,
        max_concurrency: int,
    ) -> None:
        import vllm

        self._llm = llm
        self._processor = processor
        self._tokenizer = processor.tokenizer
        self._vllm = vllm
        self.model_id = model_id
        self.revision = revision
        self.max_concurrency = max_concurrency
        self._closed = False
        self._prompt = ChatPrompts(processor)
        self._prompt_ids: dict[PagePrompt, list[int]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> VllmEngine:
        # Before vLLM is imported: its message queue would bind a non-loopback address, and
        # with its v1 multiprocessing on, the CPU platform turns "uni" into a third process.
        os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from transformers import AutoProcessor
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from .vllm_bans import PATH as BANS

        on_cpu = _on_cpu()
        args = AsyncEngineArgs(
            model=settings.model,
            revision=settings.model_revision,
            dtype=_dtype(settings.dtype, on_cpu),
            max_model_len=settings.vllm_max_model_len,
            limit_mm_per_prompt={"image": 1},
            mm_processor_kwargs={"max_pixels": settings.model_max_pixels},
            max_num_seqs=max(settings.max_concurrency, 1),
            enforce_eager=on_cpu
            if settings.vllm_enforce_eager is None
            else settings.vllm_enforce_eager,
            logits_processors=[BANS],
            **_memory(settings, on_cpu),
        )
        if on_cpu:
            args.distributed_executor_backend = "uni"  # one engine process, no worker pool
        llm = AsyncLLM.from_engine_args(args)
        local = os.path.isdir(settings.model)
        processor = AutoProcessor.from_pretrained(
            settings.model, revision=settings.model_revision, local_files_only=local
        )
        identity = identify(settings.model, settings.model_revision)
        return cls(
            llm,
            processor,
            model_id=identity.model_id,
            revision=identity.revision,
            max_concurrency=settings.max_concurrency,
        )

    @property
    def ready(self) -> bool:
        return not self._closed and not self._llm.errored

    @property
    def running(self) -> int:
        """Requests vLLM itself holds (waiting or running): its own count, not ours."""
        return self._llm.get_num_unfinished_requests()

    can_resume = True

    async def start(self) -> None:
        pass

    def metrics(self) -> bytes:
        from prometheus_client import REGISTRY, generate_latest

        return generate_latest(REGISTRY)  # vLLM's stat logger registers its series there

    def decode(self, token_ids: tuple[int, ...] | list[int]) -> str:
        return self._tokenizer.decode(list(token_ids), skip_special_tokens=True)

    async def abort(self, request_id: str) -> None:
        if not self._llm.errored:  # a dead engine has nothing left to abort
            await self._llm.abort(request_id)

    async def close(self) -> None:
        self._closed = True
        self._llm.shutdown()

    def _sampling_params(self, request: GenerationRequest) -> Any:
        sampling = request.sampling
        extra = None
        if request.banned_first_token_ids or request.banned_sequences:
            extra = {
                "ocrguard_bans": {
                    "first": sorted(request.banned_first_token_ids),
                    "sequences": [list(s) for s in request.banned_sequences],
                }
            }
        return self._vllm.SamplingParams(
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            seed=sampling.seed,
            output_kind=self._vllm.sampling_params.RequestOutputKind.DELTA,
            logprobs=0,  # the chosen token's own logprob: the guard's confidence evidence
            skip_special_tokens=True,
            extra_args=extra,
        )

    def _prompt_token_ids(self, prompt: PagePrompt) -> list[int]:
        """The chat prompt as token ids, its image placeholder left for vLLM to expand."""
        ids = self._prompt_ids.get(prompt)
        if ids is None:
            ids = self._tokenizer.encode(self._prompt(prompt), add_special_tokens=False)
            self._prompt_ids[prompt] = ids
        return ids

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        if self._closed:
            raise EngineError("engine is shut down")
        prompt = {
            "prompt_token_ids": [
                *self._prompt_token_ids(request.prompt),
                *request.prefix_token_ids,
            ],
            "multi_modal_data": {"image": request.image},
        }
        stream = self._llm.generate(prompt, self._sampling_params(request), request.request_id)
        try:
            async for output in stream:
                completion = output.outputs[0]
                reason = completion.finish_reason if output.finished else None
                if reason == "error":
                    raise EngineError(f"vLLM failed the request: {completion.stop_reason}")
                prompt_ids = output.prompt_token_ids if output.finished else None
                yield TokenDelta(
                    token_ids=tuple(completion.token_ids),
                    text=completion.text,
                    logprobs=_logprobs(completion),
                    finish_reason=_FINISH.get(reason) if reason else None,
                    prompt_tokens=len(prompt_ids) - len(request.prefix_token_ids)
                    if prompt_ids
                    else None,
                )
        except (asyncio.CancelledError, GeneratorExit):
            raise  # closing the stream below aborts the request in vLLM
        except EngineError:
            raise
        except Exception as exc:  # the engine's boundary: one error type for the service
            raise EngineError(f"vLLM generation failed: {exc}") from exc
        finally:
            await stream.aclose()  # vLLM frees the slot only once its generator is closed


def _logprobs(completion: Any) -> tuple[float, ...] | None:
    if not completion.logprobs:
        return None
    return tuple(
        step[token].logprob for step, token in zip(completion.logprobs, completion.token_ids)
    )


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _dtype(dtype: str, on_cpu: bool) -> str:
    """float32 on a CPU (the transformers engine's numbers); the model's own on a GPU."""
    return "float32" if dtype == "auto" and on_cpu else dtype


def _memory(settings: Settings, on_cpu: bool) -> dict[str, Any]:
    """KV cache sizing. On a CPU, ``gpu_memory_utilization`` would reserve that share of the
    host's RAM: a byte budget is given instead."""
    if settings.vllm_kv_cache_bytes is not None:
        return {"kv_cache_memory_bytes": settings.vllm_kv_cache_bytes}
    if on_cpu:
        return {"kv_cache_memory_bytes": 1 << 30}
    return {"gpu_memory_utilization": settings.vllm_gpu_memory_utilization}
