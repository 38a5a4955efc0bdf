"""The upstream engine: ocrguard in front of any OpenAI-compatible server (vLLM, SGLang,
llama.cpp, Ollama, TGI), streaming ``/v1/chat/completions`` through the guard.

Aborting is closing the stream: vLLM (and the others) stop a request whose client left.
What the guard reads:

- token ids: the server's own when it sends them (vLLM's ``return_token_ids``) and the
  model's tokenizer can be loaded here to decode them; else the streamed text tokenized here
  with that tokenizer; else, with no tokenizer, one token per character (the guard's
  thresholds count tokens, so short units need fewer copies of characters than of BPE
  tokens: documented in docs/deploy.md);
- logprobs when the server sends them for its own tokens.

A rewind continues the kept text as a final assistant message (vLLM's
``continue_final_message``); the first step's ban is a one-token request with
``logit_bias``. Servers without those extensions get retries from scratch instead.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from app.labeler import CHARACTERS, Tokenizer
from app.model_card import identify

from .base import EngineError, FinishReason, GenerationRequest, SamplingOptions, TokenDelta

if TYPE_CHECKING:
    from PIL import Image

    from app.config import Settings

logger = logging.getLogger(__name__)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "length": "length",
    "abort": "abort",
    "repetition": "repetition",
}
_PROBE_SECONDS = 5.0  # how often the server is asked for /v1/models while unreachable


class UpstreamEngine:
    def __init__(
        self,
        base_url: str,
        *,
        model: str | None,
        api_key: str | None,
        tokenizer: Tokenizer | None,
        max_concurrency: int,
        timeout_seconds: float,
        revision: str | None = None,
        vllm_extensions: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_id = model or "upstream"
        self.revision = revision or "upstream"
        self.max_concurrency = max_concurrency
        self._model = model
        self._api_key = api_key
        self._tokenizer = tokenizer or CHARACTERS
        self._own_ids = tokenizer is not None  # server ids are only decodable with one
        self._special = set(getattr(tokenizer, "all_special_ids", ()))
        self._timeout = httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds))
        self._vllm = vllm_extensions
        self._fixed_revision = revision
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(max_concurrency)
        self._streams: dict[str, httpx.Response] = {}
        self._reachable = False
        self._closed = False
        self._probe: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamEngine:
        if not settings.upstream_url:
            raise ValueError(
                "OCRGUARD_ENGINE=openai needs OCRGUARD_UPSTREAM_URL (the server's /v1)"
            )
        return cls(
            settings.upstream_url,
            model=settings.upstream_model,
            api_key=settings.upstream_api_key,
            tokenizer=_load_tokenizer(settings.upstream_tokenizer),
            max_concurrency=settings.max_concurrency,
            timeout_seconds=settings.upstream_timeout_seconds,
            revision=settings.model_revision,
        )

    # -- the Engine protocol -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._reachable and not self._closed

    @property
    def can_resume(self) -> bool:
        """A rewind needs the server to continue a message (vLLM) and the model's token ids
        (its bans go by id)."""
        return bool(self._vllm) and self._own_ids

    def decode(self, token_ids: tuple[int, ...] | list[int]) -> str:
        return self._tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def metrics(self) -> bytes:
        return b""

    async def start(self) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=self._timeout
        )
        await self._identify()
        self._probe = asyncio.create_task(self._probe_forever(), name="upstream-probe")

    async def close(self) -> None:
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
        for response in list(self._streams.values()):
            await response.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def abort(self, request_id: str) -> None:
        response = self._streams.pop(request_id, None)
        if response is not None:
            await response.aclose()  # the server sees the client leave and stops

    async def generate(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        if self._closed or self._client is None:
            raise EngineError("engine is shut down")
        async with self._slots:
            prefix_ids = list(request.prefix_token_ids)
            if request.banned_first_token_ids and self.can_resume:
                first = await self._first_token(request, prefix_ids)
                if first is None:  # the model ended right there
                    yield TokenDelta((), "", finish_reason="stop")
                    return
                yield first
                prefix_ids += first.token_ids
                request = _less_one(request)
            async for delta in self._stream(request, prefix_ids, {}):
                yield delta

    # -- requests -------------------------------------------------------------------------

    def _body(
        self, request: GenerationRequest, image_url: str, prefix_ids: list[int], extra: dict
    ) -> dict:
        sampling = request.sampling
        messages = chat_messages(request.prompt, image_url)
        body: dict[str, Any] = {
            "model": self._model or self.model_id,
            "messages": messages,
            "stream": True,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "logprobs": True,
            "top_logprobs": 0,
            "stream_options": {"include_usage": True},
        }
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if self._vllm:
            body["return_token_ids"] = True
            body["skip_special_tokens"] = True
            if prefix_ids:
                messages.append({"role": "assistant", "content": self.decode(prefix_ids)})
                body.update(continue_final_message=True, add_generation_prompt=False)
        return {**body, **extra}

    async def _first_token(
        self, request: GenerationRequest, prefix_ids: list[int]
    ) -> TokenDelta | None:
        """One token with the banned ones biased away (``logit_bias`` acts at every step of
        a request, so the first step gets a request of its own)."""
        bias = {str(t): -100 for t in request.banned_first_token_ids}
        one = GenerationRequest(
            request_id=request.request_id,
            image=request.image,
            prompt=request.prompt,
            sampling=_with_max_tokens(request.sampling, 1),
            prefix_token_ids=request.prefix_token_ids,
        )
        first = None
        async for delta in self._stream(one, prefix_ids, {"logit_bias": bias}):
            if delta.token_ids:
                first = TokenDelta(delta.token_ids, delta.text, delta.logprobs)
            if delta.finish_reason == "stop" and not delta.token_ids and first is None:
                return None
        return first

    async def _stream(
        self, request: GenerationRequest, prefix_ids: list[int], extra: dict
    ) -> AsyncIterator[TokenDelta]:
        assert self._client is not None
        image_url = await asyncio.to_thread(_data_url, request.image)
        body = self._body(request, image_url, prefix_ids, extra)
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    raise await _rejection(response)
                self._streams[request.request_id] = response
                self._reachable = True
                try:
                    async for delta in self._deltas(response):
                        yield delta
                finally:
                    self._streams.pop(request.request_id, None)
        except httpx.ConnectError as exc:
            self._reachable = False
            raise EngineError(f"cannot reach {self.base_url}: {exc!r}", "unavailable") from exc
        except httpx.TimeoutException as exc:
            raise EngineError(f"{self.base_url} stopped answering ({exc!r})", "timeout") from exc
        except httpx.TransportError as exc:
            raise EngineError(f"{self.base_url} dropped the stream: {exc!r}") from exc

    async def _deltas(self, response: httpx.Response) -> AsyncIterator[TokenDelta]:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError as exc:
                raise EngineError(
                    f"the server sent a chunk that is not JSON: {data[:80]!r}"
                ) from exc
            if "error" in chunk:
                raise EngineError(f"the server failed mid-stream: {chunk['error']}")
            for choice in chunk.get("choices") or []:
                delta = self._delta(choice)
                if delta is not None:
                    yield delta
            usage = chunk.get("usage")
            if usage and usage.get("prompt_tokens") is not None:
                yield TokenDelta((), "", prompt_tokens=int(usage["prompt_tokens"]))

    def _delta(self, choice: dict) -> TokenDelta | None:
        text = (choice.get("delta") or {}).get("content") or ""
        reason = choice.get("finish_reason")
        ids = choice.get("token_ids") if self._own_ids else None
        if ids:
            ids = [t for t in ids if t not in self._special]  # the end token, say
        logprobs = None
        content = (choice.get("logprobs") or {}).get("content") or []
        if ids is None and text:
            ids = self._tokenizer.encode(text, add_special_tokens=False)
        elif ids is not None and len(content) == len(ids):
            logprobs = tuple(float(item["logprob"]) for item in content)
        if not ids and not text and reason is None:
            return None
        return TokenDelta(
            token_ids=tuple(ids or ()),
            text=text,
            logprobs=logprobs,
            finish_reason=_FINISH.get(reason, "stop") if reason else None,
        )

    # -- identity and health --------------------------------------------------------------

    async def _identify(self) -> None:
        """Ask ``/v1/models`` which model is served (and whether vLLM serves it)."""
        assert self._client is not None
        try:
            response = await self._client.get("/models")
            response.raise_for_status()
            models = response.json().get("data") or []
        except (httpx.HTTPError, ValueError) as exc:
            self._reachable = False
            logger.warning("upstream %s not ready: %s", self.base_url, exc)
            return
        chosen = next((m for m in models if m.get("id") == self._model), None)
        if chosen is None and self._model is None and models:
            chosen = models[0]
        if chosen is None:
            self._reachable = False
            logger.warning("upstream %s does not serve %s", self.base_url, self._model)
            return
        self._reachable = True
        self._model = chosen["id"]
        if self.model_id == "upstream":
            self.model_id = chosen["id"]
        if self._vllm is None:
            self._vllm = chosen.get("owned_by") == "vllm"
        root = chosen.get("root")
        if self._fixed_revision is None and root and Path(root).is_dir():
            self.revision = identify(root).revision  # a local folder: its card's revision

    async def _probe_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(_PROBE_SECONDS)
            if not self._reachable:
                await self._identify()


async def _rejection(response: httpx.Response) -> EngineError:
    raw = await response.aread()
    try:
        payload = json.loads(raw)
        error = payload.get("error", payload)
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        message = raw[:200].decode("utf-8", "replace")
    status = response.status_code
    kind = "rejected" if status < 500 else ("unavailable" if status == 503 else "failed")
    return EngineError(f"upstream answered {status}: {message}", kind, status)


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _with_max_tokens(sampling: SamplingOptions, max_tokens: int) -> SamplingOptions:
    return replace(sampling, max_tokens=max_tokens)


def _less_one(request: GenerationRequest) -> GenerationRequest:
    """The rest of a request after its first token was generated on its own."""
    return replace(
        request,
        sampling=_with_max_tokens(request.sampling, max(1, request.sampling.max_tokens - 1)),
        banned_first_token_ids=frozenset(),
    )


def _load_tokenizer(name: str | None) -> Tokenizer | None:
    """The model's tokenizer when it can be loaded here (a local folder, or a hub id in the
    local cache), else None (the guard then reads characters)."""
    if not name:
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as exc:
        logger.warning("tokenizer %s cannot be loaded (%s): the guard reads characters", name, exc)
        return None


def chat_messages(prompt, image_url: str) -> list[dict[str, Any]]:
    """The prompt's chat messages with its image placeholder replaced by the page's URL."""
    messages: list[dict[str, Any]] = prompt.messages()
    for message in messages:
        if isinstance(message["content"], list):
            message["content"] = [
                {"type": "image_url", "image_url": {"url": image_url}}
                if part["type"] == "image"
                else part
                for part in message["content"]
            ]
    return messages
