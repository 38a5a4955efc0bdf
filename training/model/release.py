"""Turns a training checkpoint into a servable model folder under models/ with its card.

    python -m training release --checkpoint runs/tiny/checkpoint --out models/ocrguard-tiny \
        --revision sft-step-8000

Weights are stored in bfloat16 (half the bytes of float32; every engine loads them in the
dtype it computes in). Release only what ``eval`` showed better than the current release,
and tag the commit that holds it with its revision (``git tag sft-step-8000``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
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
WEIGHTS = "model.safetensors"


@dataclass
class ReleaseConfig:
    checkpoint: Path = field(
        default=Path("runs/tiny/checkpoint"), metadata={"help": "checkpoint folder"}
    )
    out: Path = field(default=Path("models/ocrguard-tiny"), metadata={"help": "model folder"})
    revision: str = field(default="", metadata={"help": "e.g. sft-step-8000 (the card's revision)"})
    card: Path | None = field(
        default=None, metadata={"help": "model card to install (default: keep --out's)"}
    )

    def __post_init__(self) -> None:
        self.checkpoint, self.out = Path(self.checkpoint), Path(self.out)
        if not self.revision:
            raise ValueError("give the --revision of the release")
        card = self.card or self.out / "README.md"
        if not Path(card).is_file():
            raise ValueError(f"no model card at {card}: pass --card")


def main(config: ReleaseConfig) -> int:
    card_file = config.card or config.out / "README.md"
    card = with_revision(Path(card_file).read_text(encoding="utf-8"), config.revision)
    print(f"released: {release(config.checkpoint, config.out, config.revision, card)}")
    return 0


def with_revision(card: str, revision: str) -> str:
    """The card with its ``revision:`` line (read by the service) set to ``revision``."""
    lines = card.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("revision:"):
            lines[n] = f"revision: {revision}"
            return "\n".join(lines) + "\n"
    title, *rest = lines or [""]
    return "\n".join([title, "", f"revision: {revision}", *rest]) + "\n"


def release(checkpoint: Path, out: Path, revision: str, card: str) -> Path:
    """Copy the inference files (no optimizer state), the step it was trained to, and the
    card (``README.md``, whose ``revision:`` line the service reports)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    for name in INFERENCE_FILES:
        source = checkpoint / name
        if name == WEIGHTS and source.is_file():
            save_bf16(source, out / name)
        elif source.is_file():
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


def save_bf16(source: Path, target: Path) -> None:
    """Copy safetensors weights with every floating tensor in bfloat16, and the config's
    ``dtype`` saying so (engines cast on load: float32 for the CPU engine)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {
        name: t.to(torch.bfloat16) if t.is_floating_point() else t
        for name, t in load_file(source).items()
    }
    save_file(tensors, target, metadata={"format": "pt"})
    config_file = target.parent / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        _set_dtype(config, "bfloat16")
        config_file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _set_dtype(config: dict, dtype: str) -> None:
    for key in ("dtype", "torch_dtype"):
        if key in config:
            config[key] = dtype
    for sub in ("text_config", "vision_config"):
        if isinstance(config.get(sub), dict):
            _set_dtype(config[sub], dtype)
