"""Dependencies of the routes: the long-lived objects on app.state, and access control."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import Unauthorized
from app.failure_log import FailureLog
from app.metrics import Metrics
from app.ocr_service import OcrService
from app.review_store import ReviewStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> OcrService:
    return request.app.state.service


def get_failure_log(request: Request) -> FailureLog:
    return request.app.state.failure_log


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_review(request: Request) -> ReviewStore:
    return request.app.state.review


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[OcrService, Depends(get_service)]
FailureLogDep = Annotated[FailureLog, Depends(get_failure_log)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReviewDep = Annotated[ReviewStore, Depends(get_review)]


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def check_key(request: Request, settings: Settings) -> None:
    if not settings.api_keys:
        return
    presented = _presented_key(request)
    if presented is None or not any(
        hmac.compare_digest(presented.encode(), key.encode()) for key in settings.api_keys
    ):
        raise Unauthorized("a valid API key is required (Authorization: Bearer or X-Api-Key)")


def require_key(request: Request, settings: SettingsDep) -> None:
    check_key(request, settings)


def require_key_for_health(request: Request, settings: SettingsDep) -> None:
    if not settings.public_health:
        check_key(request, settings)


def require_key_for_metrics(request: Request, settings: SettingsDep) -> None:
    if not settings.public_metrics:
        check_key(request, settings)
