"""The two web pages (transcribe, review queue), their static files, and what they ask first."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from app.config import REPO_ROOT
from app.errors import NotFound
from app.guard.policy import GUARD_MODES
from app.model_card import status_note

from .deps import ServiceDep, SettingsDep
from .errors import responses

WEB = Path(__file__).resolve().parent.parent / "web"
EXAMPLES = REPO_ROOT / "examples"

router = APIRouter(include_in_schema=False)
info_router = APIRouter(tags=["service"])


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(WEB / "index.html")


@router.get("/review")
async def review() -> FileResponse:
    return FileResponse(WEB / "review.html")


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response(status_code=204)


@router.get("/samples/{name}")
async def sample(name: str) -> FileResponse:
    """The committed example pages, offered as one-click samples."""
    if name not in _samples():
        raise NotFound(f"no sample {name!r}")
    return FileResponse(EXAMPLES / name, media_type="image/png")


@info_router.get("/v1/info", responses=responses(401), summary="What is served, and how")
async def info(service: ServiceDep, settings: SettingsDep) -> dict:
    """The served model (its card's status line: what it can read), the guard, whether an
    API key is needed, the sample pages. Public, so that the page can ask for a key."""
    engine = service.engine
    return {
        "model": {
            "id": engine.model_id,
            "revision": engine.revision,
            "note": status_note(settings.model) if settings.engine != "openai" else None,
        },
        "engine": settings.engine,
        "guard_version": service.guard.version,
        "modes": list(GUARD_MODES),
        "auth_required": bool(settings.api_keys),
        "samples": _samples(),
    }


def _samples() -> list[str]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES.glob("*.png"))
