"""The vLLM engine: in-process ``AsyncLLM`` (vLLM >= 0.17 v1 API) for GPU serving.

vLLM is imported lazily and only here; it cannot be installed on the CPU machines this
project is developed on, so its unit test drives this adapter against a stand-in with the
same interface (tests/app/test_vllm_engine.py), and the GPU path is exercised on a device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from app.prompt import ChatPrompts

from .base import EngineError, GenerationRequest, TokenDelta

if TYPE_CHECKING:
    from app.config import Settings

logger = logging.getLogger(__name__)


class VllmEngine:
    """Streams DELTA outputs of ``AsyncLLM.generate``; the guard's abort calls
    ``AsyncLLM.abort`` so the KV cache slot is freed at once."""

    def __init__(
        self,
        llm: Any,
        tokenizer: Any,
        processor: Any,
        model_id: str,
        revision: str,
        max_concurrency: int,
        vllm_module: Any,
    ) -> None:
        self._llm = llm
        self._tokenizer = tokenizer
        self._processor = processor
        self._vllm = vllm_module
        self.model_id = model_id
        self.revision = revision
        self.max_concurrency = max_concurrency
        self._closed = False
        self._prompt = ChatPrompts(processor)

    @classmethod
    def from_settings(cls, settings: Settings) -> VllmEngine:
        import vllm
        from transformers import AutoProcessor
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(
            model=settings.model,
            max_model_len=settings.vllm_max_model_len,
            gpu_memory_utilization=settings.vllm_gpu_memory_utilization,
            limit_mm_per_prompt={"image": 1},
            mm_processor_kwargs={"max_pixels": settings.model_max_pixels},
            max_num_seqs=max(settings.max_concurrency, 1),
        )
        llm = AsyncLLM.from_engine_args(args)
        processor = AutoProcessor.from_pretrained(settings.model)
        return cls(
            llm,
            processor.tokenizer,
            processor,
            settings.model,
            "main",
            settings.max_concurrency,
            vllm,
        )

    @property
    def ready(self) -> bool:
        return not self._closed and not getattr(self._llm, "errored", False)

    def decode(self, token_ids) -> str:
        return self._tokenizer.decode(list(token_ids), skip_special_tokens=True)

    async def abort(self, request_id: str) -> None:
        await self._llm.abort(request_id)

    async def close(self) -> None:
        self._closed = True
        self._llm.shutdown()

    def _sampling_params(self, request: GenerationRequest) -> Any:
        vllm = self._vllm
        sampling = request.sampling
        # vLLM has no per-step ban without a custom logits processor: the loop's opening
        # n-gram is banned as text for the whole continuation instead.
        bad_words = [
            self.decode(seq) for seq in request.banned_sequences if self.decode(seq).strip()
        ]
        return vllm.SamplingParams(
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            seed=sampling.seed,
            output_kind=vllm.sampling_params.RequestOutputKind.DELTA,
            bad_words=bad_words or None,
            logprobs=0,
            skip_special_tokens=True,
        )

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        if self._closed:
            raise EngineError("engine is shut down")
        # Resuming after a rewind: the kept output goes into the prompt as text.
        prefix = self.decode(request.prefix_token_ids) if request.prefix_token_ids else ""
        prompt = {
            "prompt": self._prompt(request.prompt) + prefix,
            "multi_modal_data": {"image": request.image},
        }
        stream = self._llm.generate(prompt, self._sampling_params(request), request.request_id)
        finished = False
        try:
            async for output in stream:
                completion = output.outputs[0]
                logprobs = None
                if completion.logprobs:
                    logprobs = tuple(
                        step[token].logprob
                        for step, token in zip(completion.logprobs, completion.token_ids)
                    )
                reason = completion.finish_reason if output.finished else None
                finished = output.finished
                yield TokenDelta(
                    token_ids=tuple(completion.token_ids),
                    text=completion.text,
                    logprobs=logprobs,
                    finish_reason=_finish_reason(reason),
                )
        except (asyncio.CancelledError, GeneratorExit):
            # Client gone or guard tripped: free the slot now. A dead engine is not aborted.
            if not finished and not getattr(self._llm, "errored", False):
                await self._llm.abort(request.request_id)
            raise
        except Exception as exc:  # the engine's boundary: one error type for the service
            raise EngineError(f"vLLM generation failed: {exc}") from exc
        finally:
            await stream.aclose()


def _finish_reason(reason: str | None):
    if reason is None:
        return None
    return {"stop": "stop", "length": "length", "abort": "abort"}.get(reason, "stop")
