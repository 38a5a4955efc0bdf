"""Turns a training checkpoint into a servable model folder under models/ with its card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

INFERENCE_FILES = (
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
)

LOAD_OPTIONS = ("is_local", "local_files_only")


def release(checkpoint: Path, out: Path, revision: str, card: str) -> Path:
    """Copy the inference files (no optimizer state), the step it was trained to, and the
    card (``README.md``, whose ``revision:`` line the service reports)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    for name in INFERENCE_FILES:
        source = checkpoint / name
        if source.is_file():
            shutil.copy2(source, out / name)
    tokenizer_config = out / "tokenizer_config.json"
    if tokenizer_config.is_file():
        # how the run loaded its starting model, recorded by transformers: not the model's
        settings = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        dropped = [settings.pop(key) for key in LOAD_OPTIONS if key in settings]
        if dropped:
            tokenizer_config.write_text(
                json.dumps(settings, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
    lineage = {"step": state["step"], "config": state.get("config"), "revision": revision}
    (out / "training_state.json").write_text(json.dumps(lineage, indent=2) + "\n")
    (out / "README.md").write_text(card)
    return out
