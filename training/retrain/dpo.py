"""DPO: TRL's DPOTrainer on failure pairs, writing a new model version with its lineage card.

    # one process, CPU or one GPU; LoRA merged into the saved weights
    python -m training dpo --model models/ocrguard-tiny --pairs data/pairs --out models --lora

    # several GPUs (data parallel through accelerate; add --config_file for DeepSpeed/FSDP).
    # Pass --version so that every process agrees on the folder it writes.
    accelerate launch --num_processes 8 -m training dpo \\
        --model models/dharma-ocr-7b --pairs data/pairs --out models --lora --version 3 \\
        --batch-size 2 --grad-accum 8 --bf16

The version lands in ``{out}/{name}-v{N}`` (``save_pretrained`` of the model and processor)
with ``README.md`` and ``lineage.json``: the base model, the sha256 of the snapshot's
``records.jsonl`` the pairs came from, every hyperparameter, the library versions, the
training log and, once ``retrain`` has run it, the evaluation.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from app.model_card import read_revision

from ..model.loading import load_model, load_processor
from .interpolate import check_keep, interpolate_into
from .pairs import MANIFEST_FILE, PAIRS_FILE, load_pairs, sha256_file

logger = logging.getLogger(__name__)

LINEAGE_FILE = "lineage.json"
PLOT_FILE = "degeneration.svg"


@dataclass
class DpoArgs:
    model: str = field(default="models/ocrguard-tiny", metadata={"help": "base model folder"})
    pairs: Path = field(default=Path("data/pairs"), metadata={"help": "folder written by pairs"})
    out: Path = field(default=Path("models"), metadata={"help": "versions are created under it"})
    name: str = field(default="", metadata={"help": "version name (default: base name + -dpo)"})
    version: int = field(default=0, metadata={"help": "version number (0: next free one)"})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (PEFT), then merge"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale numerator"})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout"})
    lora_targets: str = field(default="all-linear", metadata={"help": "modules LoRA adapts"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta (strength of the KL anchor)"})
    learning_rate: float = field(default=5e-6, metadata={"help": "peak learning rate"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the pairs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: epochs)"})
    batch_size: int = field(default=1, metadata={"help": "pairs per device per step"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    max_length: int = field(default=0, metadata={"help": "truncate prompt+answer (0: never)"})
    sft_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of an NLL term on the chosen side (RPO: TRL's loss_type "
            "['sigmoid', 'sft']; 0: DPO alone)"
        },
    )
    keep_update: float = field(
        default=1.0,
        metadata={
            "help": "fraction of the update saved: base + keep_update * (trained - base), "
            "weight-space interpolation (WiSE-FT; training/retrain/interpolate.py); 1: as trained"
        },
    )
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPU)"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "trade compute for memory"}
    )
    seed: int = field(default=0, metadata={"help": "training seed"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})

    def __post_init__(self) -> None:
        self.pairs, self.out = Path(self.pairs), Path(self.out)
        if not (self.pairs / PAIRS_FILE).exists():
            raise ValueError(f"--pairs {self.pairs} holds no {PAIRS_FILE}: run `pairs` first")
        if self.beta <= 0 or self.learning_rate <= 0:
            raise ValueError("beta and learning_rate must be positive")
        check_keep(self.keep_update)


def version_folder(args: DpoArgs) -> Path:
    """``{out}/{name}-v{N}``: the requested version, or one past the highest existing."""
    name = args.name or f"{Path(args.model).name}-dpo"
    number = args.version
    if number <= 0:
        pattern = re.compile(rf"^{re.escape(name)}-v(\d+)$")
        taken = [int(m[1]) for p in args.out.glob(f"{name}-v*") if (m := pattern.match(p.name))]
        number = max(taken, default=0) + 1
    return args.out / f"{name}-v{number}"


def build_trainer(args: DpoArgs, output_dir: Path):
    """The DPOTrainer for ``args`` (model, processor and pairs loaded), not yet trained."""
    import torch
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(args.threads)
    # Model
    processor = load_processor(args.model)
    model = load_model(args.model)
    peft_config = None
    if args.lora:
        from peft import LoraConfig

        targets = (
            args.lora_targets if args.lora_targets == "all-linear" else args.lora_targets.split(",")
        )
        peft_config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
    # Dataset
    dataset = load_pairs(args.pairs, processor)
    # Training
    config = DPOConfig(
        output_dir=str(output_dir),
        beta=args.beta,
        learning_rate=args.learning_rate,
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        max_length=args.max_length or None,
        **_loss(args.sft_weight),
        bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    return DPOTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config,
    )


def _loss(sft_weight: float) -> dict[str, Any]:
    if sft_weight <= 0:
        return {}
    return {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, sft_weight]}


def save_version(trainer, args: DpoArgs, folder: Path, eval_results: dict | None = None) -> Path:
    """Write the trained model (LoRA merged in), the processor and the lineage card."""
    if not trainer.accelerator.is_main_process:
        return folder
    model = trainer.accelerator.unwrap_model(trainer.model)
    if args.lora:
        model.save_pretrained(folder / "adapter")  # the adapter alone, for stacking or audit
        model = model.merge_and_unload()
    interpolate_into(model, args.model, args.keep_update)
    model.save_pretrained(folder)
    trainer.processing_class.save_pretrained(folder)
    write_card(folder, lineage(args, trainer.state.log_history), eval_results)
    return folder


def lineage(args: DpoArgs, log_history: list[dict[str, Any]]) -> dict[str, Any]:
    manifest_path = args.pairs / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    return {
        "base_model": str(Path(args.model).resolve()),
        "base_revision": read_revision(Path(args.model)),
        "dataset": {
            "pairs": str(args.pairs.resolve()),
            "records_sha256": manifest.get("records_sha256"),
            "pairs_sha256": sha256_file(args.pairs / PAIRS_FILE),
            "rows": manifest.get("rows"),
            "by_source": manifest.get("by_source"),
            "by_rejected": manifest.get("by_rejected"),
            "dropped": manifest.get("dropped"),
            "judge": manifest.get("judge"),
            "pair_style": manifest.get("pair_style", "whole"),
        },
        "method": "dpo-lora-merged" if args.lora else "dpo-full",
        "hyperparameters": {
            k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()
        },
        "libraries": {p: package_version(p) for p in ("torch", "transformers", "trl", "peft")},
        "train_log": log_history,
    }


def write_card(
    folder: Path,
    info: dict[str, Any],
    eval_results: dict | None = None,
    comparison: dict | None = None,
) -> None:
    """``lineage.json`` plus a README.md model card rendered from it."""
    if eval_results is not None:
        info = {**info, "eval": eval_results}
    if comparison is not None:
        info = {**info, "comparison": comparison}
    (folder / LINEAGE_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False))
    data = info["dataset"]
    losses = [e["loss"] for e in info["train_log"] if "loss" in e]
    hyper = "\n".join(f"| {k} | {v} |" for k, v in info["hyperparameters"].items())
    # the version's own revision, which the service reports (app/model_card.py read_revision):
    # the revision it was trained from, and this version
    revision = f"{info.get('base_revision', 'local')}+{folder.name}"
    card = f"""---
revision: {revision}
base_model: {info["base_model"]}
library_name: transformers
tags: [ocrguard, dpo, trl, ocr]
---

# {folder.name}

DPO ({info["method"]}) of `{info["base_model"]}` on its own degenerate outputs logged by the
ocrguard loop guard (rejected) against corrections, clean recoveries or judged candidates
(chosen).

## Lineage

- base model: `{info["base_model"]}`, revision `{info.get("base_revision", "unknown")}`
- dataset: `{data["pairs"]}`, {data["rows"]} pairs, chosen from {data["by_source"]},
  rejected from {data.get("by_rejected")}
- records.jsonl sha256: `{data["records_sha256"]}`
- pairs.jsonl sha256: `{data["pairs_sha256"]}`
- dropped records: {data["dropped"]}; judge: {data["judge"]}; pair style: {data.get("pair_style", "whole")}
- libraries: {", ".join(f"{k} {v}" for k, v in info["libraries"].items())}
- training loss: first {losses[0] if losses else "n/a"}, last {losses[-1] if losses else "n/a"}

## Hyperparameters

| name | value |
|---|---|
{hyper}

## Evaluation

{_evaluation_text(info)}
"""
    (folder / "README.md").write_text(card, encoding="utf-8")
    if (info.get("eval") or {}).get("prone"):
        from ..evaluation.plot import degeneration_svg

        (folder / PLOT_FILE).write_text(degeneration_svg(info["eval"]), encoding="utf-8")


def _evaluation_text(info: dict[str, Any]) -> str:
    """The side-by-side tables and the release verdict, as markdown."""
    if not info.get("eval"):
        return "not run"
    from ..evaluation.heldout import render_tables

    text = render_tables(info["eval"], batch_size=0, device="cpu")
    if info["eval"].get("prone"):
        text = (
            f"![degeneration by prone kind, serving model against this one]({PLOT_FILE})\n\n{text}"
        )
    comparison = info.get("comparison")
    if comparison:
        verdict = (
            "better: released"
            if comparison["better"]
            else "not released: " + "; ".join(comparison["reasons"])
        )
        rows = [
            f"| {d} | {v['serving']:.1%} | {v['candidate']:.1%} | "
            + (f"{v['reduction']:.1%}" if v["reduction"] is not None else "n/a")
            + " |"
            for d, v in comparison["degeneration"].items()
        ]
        text += (
            "\n\nProne degeneration, serving model against this one:\n\n"
            "| decoding | serving | this | relative reduction |\n|---|---|---|---|\n"
            + "\n".join(rows)
            + f"\n\nStandard kinds' CER change: {comparison['cer_change']}\n\n**{verdict}**"
        )
    return text


def add_eval(folder: Path, eval_results: dict, comparison: dict | None = None) -> None:
    """Record an evaluation (and its verdict against the serving model) on a version's card."""
    info = json.loads((folder / LINEAGE_FILE).read_text())
    write_card(folder, info, eval_results, comparison)


def main(args: DpoArgs) -> int:
    print(f"new model version: {run(args)}")
    return 0


def run(args: DpoArgs) -> Path:
    """Train and save a new version; return its folder."""
    folder = version_folder(args)
    if int(os.environ.get("RANK", "0")) == 0:
        folder.mkdir(parents=True, exist_ok=args.version > 0)
    trainer = build_trainer(args, folder)
    trainer.train()
    save_version(trainer, args, folder)
    logger.info("new model version: %s", folder)
    return folder
