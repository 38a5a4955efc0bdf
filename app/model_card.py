"""Which model is served, and which revision of it: one answer for every engine.

Metrics, failure records and the API all carry (model id, revision), so that a failure can
be traced to the weights that produced it and training knows what it is improving.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelIdentity:
    model_id: str
    """A local folder's name, or the hub id."""
    revision: str
    """The model card's ``revision:`` line, the hub snapshot's commit, or what was asked."""


def identify(model: str | Path, revision: str | None = None) -> ModelIdentity:
    """The identity of a local model folder or a hub id (``revision`` overrides)."""
    path = Path(model)
    if not path.is_dir():
        return ModelIdentity(str(model), revision or "main")
    resolved = path.resolve()
    name = resolved.name
    cache = resolved.parent.parent.name  # models--org--name/snapshots/<sha>
    if resolved.parent.name == "snapshots" and cache.startswith("models--"):
        name = cache.removeprefix("models--").replace("--", "/")
    return ModelIdentity(name, revision or read_revision(path))


def read_revision(folder: Path) -> str:
    """The card's ``revision:`` line; else the commit of a hub cache snapshot
    (``.../snapshots/<sha>``); else ``local``."""
    card = folder / "README.md"
    if card.is_file():
        for line in card.read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("revision:"):
                return line.split(":", 1)[1].strip()
    resolved = folder.resolve()
    if resolved.parent.name == "snapshots" and len(resolved.name) == 40:
        return resolved.name
    return "local"


def status_note(model: str | Path) -> str | None:
    """The card's status paragraph (``**Status: ...**``), markup removed: what the model can
    read, for a page to say before a first upload. None without one."""
    card = Path(model) / "README.md"
    if not card.is_file():
        return None
    for paragraph in card.read_text(encoding="utf-8").split("\n\n"):
        if paragraph.startswith("**Status:"):
            return " ".join(paragraph.replace("**", "").split())
    return None
