"""The OpenAI-compatible routes: guarded Chat Completions, and the served model."""

from __future__ import annotations

from contextlib import aclosing

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from app.chat import ChatFormat
from app.ocr_service import OcrService
from app.results import PageEvent

from .chat_inputs import read_chat_request
from .chat_schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList, OpenAIError
from .deps import ServiceDep, SettingsDep, require_key
from .disconnect import unless_gone
from .sse import ReservedStream

router = APIRouter(tags=["OpenAI-compatible"])

_ERRORS = {
    status: {"model": OpenAIError, "description": text}
    for status, text in {
        400: "Bad request: messages, image, options (OpenAI's error shape)",
        401: "A valid API key is required",
        404: "The model is not served here",
        413: "The image is too large",
        502: "The model engine failed",
        503: "Full or shutting down (Retry-After), or the engine is unavailable",
        504: "The engine stopped answering",
    }.items()
}


def served_names(service: OcrService, alias: str | None) -> set[str]:
    return {service.engine.model_id} | ({alias} if alias else set())


@router.get(
    "/v1/models",
    dependencies=[Depends(require_key)],
    response_model=ModelList,
    responses={401: _ERRORS[401]},
    summary="The served model (OpenAI's model list)",
)
async def models(service: ServiceDep, settings: SettingsDep) -> ModelList:
    engine = service.engine
    names = [settings.served_model_name or engine.model_id]
    return ModelList(
        data=[
            ModelCard(
                id=name, created=service.started, root=settings.model, revision=engine.revision
            )
            for name in names
        ]
    )


@router.post(
    "/v1/chat/completions",
    dependencies=[Depends(require_key)],
    response_model=ChatCompletion,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **_ERRORS,
    },
    summary="Transcribe one page image, guarded, in OpenAI's Chat Completions format",
)
async def chat_completions(
    chat: ChatCompletionRequest, request: Request, settings: SettingsDep, service: ServiceDep
) -> Response:
    served = served_names(service, settings.served_model_name)
    job = await read_chat_request(chat, settings, served)
    format_ = ChatFormat(job.request_id, chat.model, chat.logprobs, service.engine.decode)
    reservation = service.reserve()
    headers = {"X-Request-Id": job.request_id}
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        return ReservedStream(
            format_.chunks(service.transcribe(job), include_usage),
            reservation,
            headers={"Cache-Control": "no-cache", **headers},
        )

    async def answer() -> dict:
        async with aclosing(service.transcribe(job)) as events:
            async for event in events:
                if isinstance(event, PageEvent):
                    page = event
        return format_.completion(page)

    async with reservation:
        return JSONResponse(await unless_gone(request, answer()), headers=headers)
