"""Is the vision tower still telling images apart? A health check for training from scratch.

Issue #4 found the failure this watches for: with CLIP's mean/std the white page becomes a
large constant, and within ~60 steps at a high learning rate every visual token collapses
onto one shared vector. The loss keeps falling for a while (the language prior carries it),
so nothing in the loss curve shows that the model has stopped looking at the image. Three
numbers on a fixed probe batch do:

- ``pooled_cosine``: mean cosine between the mean-pooled visual tokens of two different
  images. Healthy towers stay well below 1; the collapse drives it to 1.000.
- ``image_specific``: how far each image's pooled vector lies from the mean of all of
  them, relative to its own length (~1 % at the collapse).
- ``visual_token_norm``: mean length of a visual token (a sudden jump or fall is a warning).

    python -m training health --model models/ocrguard-tiny
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .loading import load_model, load_processor
from .synth import Generator, Sample

PROBE_SEED = 7_777_777
"""Probe pages come from their own seed, never used for training or evaluation."""

COLLAPSE_COSINE = 0.99
"""Above this mean pooled cosine the visual tokens no longer carry the image."""


@dataclass
class HealthConfig:
    model: Path = field(default=Path("models/ocrguard-tiny"), metadata={"help": "model folder"})
    probe: int = field(default=8, metadata={"help": "probe images (at least 2)"})

    def __post_init__(self) -> None:
        self.model = Path(self.model)
        if self.probe < 2:
            raise ValueError("probe: the check compares images, give it at least 2")


def main(config: HealthConfig) -> int:
    """Print the health as JSON; exit status 1 when the visual tokens collapsed."""

    processor = load_processor(config.model)
    model = load_model(config.model)
    result = vision_health(processor, model, probe_samples(config.probe))
    print(json.dumps(result))
    return 1 if result["collapsed"] else 0


def probe_samples(count: int = 8) -> list[Sample]:
    """A fixed batch of single lines: the same images at every check of every run."""
    generator = Generator(PROBE_SEED)
    return [generator.sample(i, "line") for i in range(count)]


def vision_health(processor, model, samples: list[Sample]) -> dict[str, float | bool]:
    """The three numbers above for ``samples`` (two or more images), and ``collapsed``."""
    import torch
    import torch.nn.functional as F

    if len(samples) < 2:
        raise ValueError("the health check compares images: give it at least two")
    inputs = processor.image_processor(images=[s.image for s in samples], return_tensors="pt")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            features = model.get_image_features(
                inputs["pixel_values"].to(model.device), inputs["image_grid_thw"].to(model.device)
            ).pooler_output
    finally:
        model.train(was_training)
    tokens = torch.cat(list(features)).float()
    pooled = torch.stack([t.float().mean(dim=0) for t in features])
    unit = F.normalize(pooled, dim=-1)
    cosine = unit @ unit.T
    n = len(samples)
    off_diagonal = (cosine.sum() - cosine.diagonal().sum()) / (n * (n - 1))
    center = pooled.mean(dim=0, keepdim=True)
    specific = ((pooled - center).norm(dim=-1) / pooled.norm(dim=-1).clamp_min(1e-12)).mean()
    result = {
        "pooled_cosine": round(float(off_diagonal), 4),
        "image_specific": round(float(specific), 4),
        "visual_token_norm": round(float(tokens.norm(dim=-1).mean()), 4),
    }
    result["collapsed"] = result["pooled_cosine"] > COLLAPSE_COSINE
    return result
