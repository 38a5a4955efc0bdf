"""Weight-space interpolation of a tuned version with its base (WiSE-FT: Wortsman et al.,
"Robust fine-tuning of zero-shot models", CVPR 2022): keep a fraction of the update.

    ocrguard-train interpolate --base models/ocrguard-tiny \\
        --tuned data/retrain/versions/ocrguard-tiny-dpo-v2 --keep 0.5 \\
        --out data/retrain/versions/ocrguard-tiny-dpo-v3

The weights written are ``base + keep * (tuned - base)``, parameter by parameter. On the
embedded model a DPO round moves every standard kind's CER by a few tenths of a point around
the release rule's limit whatever its pairs or knobs (bench/results/dpo_experiment.md); a
fraction of the update keeps most of its cut in degeneration and less of that drift.
``dpo --keep-update`` applies the same to a version as it is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.loading import load_model


@dataclass
class InterpolateConfig:
    base: str = field(default="models/ocrguard-tiny", metadata={"help": "the model tuned"})
    tuned: str = field(default="", metadata={"help": "a version trained from --base"})
    keep: float = field(default=0.5, metadata={"help": "fraction of the update kept (0..1)"})
    out: Path = field(default=Path("models/interpolated"), metadata={"help": "folder to write"})

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        check_keep(self.keep)
        if not self.tuned:
            raise ValueError("--tuned: the version to interpolate")


def check_keep(keep: float) -> float:
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep {keep}: a fraction of the update, from 0 to 1")
    return keep


def interpolate_state(base: dict[str, Any], tuned: dict[str, Any], keep: float) -> dict[str, Any]:
    """``base + keep * (tuned - base)`` for every tensor, in the tuned tensor's dtype."""
    if base.keys() != tuned.keys():
        missing = sorted(set(base) ^ set(tuned))[:5]
        raise ValueError(f"the models' parameters differ: {missing}")
    return {
        name: (base[name].float() + keep * (value.float() - base[name].float())).to(value.dtype)
        for name, value in tuned.items()
    }


def interpolate_into(model, base_path: str | Path, keep: float) -> None:
    """Move ``model``'s weights (trained from ``base_path``) back towards the base, in place."""
    if keep == 1.0:
        return
    base = load_model(base_path).state_dict()
    mixed = interpolate_state(base, model.state_dict(), keep)
    model.load_state_dict(mixed)


def main(config: InterpolateConfig) -> int:
    from ..model.loading import load_processor
    from .dpo import LINEAGE_FILE, PLOT_FILE, write_card

    tuned = load_model(config.tuned)
    interpolate_into(tuned, config.base, config.keep)
    config.out.mkdir(parents=True, exist_ok=True)
    tuned.save_pretrained(config.out)
    load_processor(config.tuned).save_pretrained(config.out)
    source = Path(config.tuned)
    if (source / LINEAGE_FILE).exists():
        info = json.loads((source / LINEAGE_FILE).read_text())
        info.pop("eval", None)  # the tuned version's evaluation is not this one's
        info.pop("comparison", None)
        info["hyperparameters"] = {**info.get("hyperparameters", {}), "keep_update": config.keep}
        info["interpolation"] = {
            "base": str(Path(config.base).resolve()),
            "tuned": str(source.resolve()),
            "keep": config.keep,
        }
        (config.out / PLOT_FILE).unlink(missing_ok=True)
        write_card(config.out, info)
    print(f"interpolated version: {config.out} (keep {config.keep} of the update)")
    return 0
