"""The real corpus of degenerate and legitimate texts: its manifest and its files.

``corpus/`` holds the texts the guard's thresholds were tuned on; ``corpus/holdout*/`` texts
collected afterwards, each in a separate pass and never read while tuning (their READMEs say
whether that still holds): recall and false alarms there measure the guard on real text it
was not fitted to. ``holdout/`` was used once for tuning since; ``holdout2/`` replaces it.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
HOLDOUT = CORPUS / "holdout"
# in the order collected
HOLDOUTS = tuple(CORPUS / f"holdout{n}" for n in ("", "2", "3", "4", "5"))


def holdouts() -> list[Path]:
    """The held-out folders present (a checkout may predate the later ones)."""
    return [folder for folder in HOLDOUTS if (folder / "manifest.jsonl").exists()]


def manifest(folder: Path = CORPUS) -> list[dict]:
    """One dict per item; ``file`` is relative to ``folder`` (the pt-BR legitimate texts of
    the main corpus live with the training texts, ``training/model/texts``, and are read
    from there). Each item carries its folder under ``folder``."""
    lines = (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [{**json.loads(line), "folder": str(folder)} for line in lines if line.strip()]


def read(item: dict) -> str:
    return (Path(item.get("folder", CORPUS)) / item["file"]).read_text(encoding="utf-8")


def legit_texts() -> list[str]:
    return [read(item) for item in manifest() if item["set"] == "legit"]
