"""The real corpus of degenerate and legitimate texts: its manifest and its files."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def manifest() -> list[dict]:
    """One dict per item; ``file`` is relative to the corpus folder (the pt-BR legitimate
    texts live with the training texts, ``training/model/texts``, and are read from there)."""
    lines = (CORPUS / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read(item: dict) -> str:
    return (CORPUS / item["file"]).read_text(encoding="utf-8")


def legit_texts() -> list[str]:
    return [read(item) for item in manifest() if item["set"] == "legit"]
