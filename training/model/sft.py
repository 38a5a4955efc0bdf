"""Supervised training of the embedded OCR model from scratch, resumable from checkpoints.

python -m training sft --out runs/tiny --steps 20000
python -m training sft --out runs/tiny --steps 40000   # resumes where it stopped

On a GPU (``--device cuda``, bf16 autocast) rendering and preprocessing the pages should
bound the speed rather than the 6 M-parameter model (a block batch of 32 takes ~1 s of one CPU
core; not yet measured on a GPU): ``--workers N`` renders batches ahead in N processes.
The batch of a step is a pure function of the seed, the step and the mix, so it is the same
with any number of workers and a resumed run continues the same stream.
``--stop-after-minutes`` saves a checkpoint and stops cleanly inside a time limit (a lent GPU
machine, the end of a session); ``scripts/gpu_train`` is the prepared run for such a machine.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.prompt import OCR_INSTRUCTION, ocr_messages

from ..progress import Progress
from .architecture import ModelSize, build_model, build_processor, build_tokenizer
from .health import probe_samples, vision_health
from .loading import load_model, load_processor
from .synth import KINDS, OPEN, Generator, Kind, parse_kinds

logger = logging.getLogger(__name__)


@dataclass
class SftConfig:
    out: Path = field(
        default=Path("runs/tiny"), metadata={"help": "run folder (checkpoints, logs)"}
    )
    steps: int = field(
        default=20_000, metadata={"help": "total optimizer steps (resume continues to this)"}
    )
    batch_size: int = field(default=16, metadata={"help": "samples per step"})
    lr: float = field(default=4e-4, metadata={"help": "peak learning rate (<= 5e-4: see issue #4)"})
    warmup: int = field(default=300, metadata={"help": "linear warm-up steps"})
    seed: int = field(default=0, metadata={"help": "training data and init seed"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    device: str = field(
        default="auto", metadata={"help": "auto (cuda when there is one), cpu or cuda"}
    )
    workers: int = field(
        default=0,
        metadata={"help": "processes rendering batches ahead (0: in the training process)"},
    )
    stop_after_minutes: float = field(
        default=0.0,
        metadata={"help": "save a checkpoint and stop after this much wall time (0: no limit)"},
    )
    vocab_size: int = field(default=512, metadata={"help": "byte-level BPE vocabulary"})
    lines_only_until: float = field(
        default=0.25, metadata={"help": "fraction of steps on single lines only"}
    )
    mix: str = field(
        default="chars,line,line,block,table,receipt,form",
        metadata={
            "help": "kinds drawn in turn after the lines-only phase (repeat a kind to weight it)"
        },
    )
    checkpoint_every: int = field(default=250, metadata={"help": "steps between checkpoints"})
    eval_every: int = field(default=1000, metadata={"help": "steps between held-out evaluations"})
    eval_samples: int = field(
        default=12, metadata={"help": "held-out samples per kind at each evaluation"}
    )
    max_new_tokens: int = field(default=160, metadata={"help": "decode budget of evaluations"})
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "model folder to continue from when the run has no checkpoint (e.g. models/ocrguard-tiny)"
        },
    )
    size: ModelSize = field(
        default_factory=ModelSize, metadata={"help": "network dimensions", "cli": False}
    )

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        parse_kinds(self.mix)  # fail now, not at the first step that draws an unknown kind
        resolve_device(self.device)  # so is a device this machine does not have


def main(config: SftConfig) -> int:
    print(f"checkpoint: {run(config)}")
    return 0


def run(config: SftConfig) -> Path:
    import torch

    device = resolve_device(config.device)
    torch.set_num_threads(config.threads)
    out = config.out
    ckpt = out / "checkpoint"
    out.mkdir(parents=True, exist_ok=True)
    processor, model, state = _load_or_init(config, ckpt)
    model.to(device)  # before the optimizer, whose loaded state follows its parameters
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98)
    )
    if state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    step = state.get("step", 0)
    # A run continued from a released folder starts a fresh optimizer: warm it up again
    # from that step instead of jumping in at the schedule's learning rate.
    rewarm_from = state.get("rewarm_from")
    log = (out / "train.jsonl").open("a", encoding="utf-8")
    probe = probe_samples()
    _check_health(processor, model, probe, step, log)
    model.train()
    started = time.monotonic()
    deadline = started + 60 * config.stop_after_minutes if config.stop_after_minutes > 0 else None
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    progress = Progress("sft", total=config.steps - step, unit="step")
    for inputs in batches(processor, config, step):
        inputs = {name: tensor.to(device, non_blocking=True) for name, tensor in inputs.items()}
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, config, rewarm_from)
        with autocast:
            loss = model(**inputs).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        progress.update(step=step, loss=round(loss.item(), 4))
        out_of_time = deadline is not None and time.monotonic() >= deadline
        if step % 25 == 0 or step == config.steps or out_of_time:
            entry = {
                "step": step,
                "kind": _kind_of(step - 1, config),  # the loss is that batch's, one kind
                "loss": round(loss.item(), 4),
                "lr": _lr(step, config, rewarm_from),
                "seconds": round(time.monotonic() - started, 1),
            }
            log.write(json.dumps(entry) + "\n")
            log.flush()
        if step % config.checkpoint_every == 0 or step == config.steps or out_of_time:
            _save(ckpt, processor, model, optimizer, step, config, rewarm_from)
        if step % config.eval_every == 0 or step == config.steps:
            model.eval()
            scores = evaluate(
                processor, model, config.eval_samples, config.max_new_tokens, _eval_kinds(config)
            )
            model.train()
            log.write(json.dumps({"step": step, "eval": scores}) + "\n")
            log.flush()
            logger.info("step %d eval %s", step, scores)
            _check_health(processor, model, probe, step, log)
        if out_of_time and step < config.steps:
            logger.info(
                "stopped at step %d after %.1f minutes (--stop-after-minutes); the same "
                "command resumes from the checkpoint",
                step,
                config.stop_after_minutes,
            )
            break
    progress.close(step=step)
    return ckpt


def resolve_device(name: str):
    """``auto`` -> cuda when torch sees a GPU, else cpu; ``cuda`` without one is an error."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: auto, cpu or cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("cuda asked for, but torch sees no CUDA device here")
    return torch.device(name)


class _StepBatches:
    """Step ``s``'s collated batch, the same in any process (a map-style dataset by step).

    One kind per batch: padding a batch of single lines to its one page-sized sample made
    each step cost as much as a batch of pages (3 s instead of ~1 s on 2 cores).
    """

    def __init__(self, processor, config: SftConfig) -> None:
        self.processor = processor
        self.config = config
        self.generator = Generator(config.seed)

    def __getitem__(self, step: int):
        config = self.config
        kind = _kind_of(step, config)
        first = step * config.batch_size
        samples = [self.generator.sample(first + i, kind) for i in range(config.batch_size)]
        return dict(collate(self.processor, samples))  # plain tensors: workers pass them on


def batches(processor, config: SftConfig, start: int):
    """The collated batches of steps ``start`` to ``config.steps - 1``, in order."""
    import torch
    from torch.utils.data import DataLoader

    dataset = _StepBatches(processor, config)
    if config.workers <= 0:
        return (dataset[step] for step in range(start, config.steps))

    return iter(
        DataLoader(
            dataset,
            batch_size=None,  # the dataset's items are whole batches already
            sampler=range(start, config.steps),
            num_workers=config.workers,
            prefetch_factor=4,
            worker_init_fn=_one_thread,
            pin_memory=torch.cuda.is_available(),  # page-locked copies for the GPU
            persistent_workers=False,
        )
    )


def _one_thread(_worker: int) -> None:
    import torch

    torch.set_num_threads(1)  # N workers on N cores, not N x cores threads each


def _check_health(processor, model, probe, step: int, log) -> None:
    """Log the vision tower's health (training/model/health.py); warn loudly on a collapse."""
    health = vision_health(processor, model, probe)
    log.write(json.dumps({"step": step, "health": health}) + "\n")
    log.flush()
    if health["collapsed"]:
        logger.warning(
            "step %d: visual tokens collapsed (pooled cosine %.4f): the model has stopped "
            "looking at the image; lower --lr (issue #4)",
            step,
            health["pooled_cosine"],
        )
    else:
        logger.info("step %d health %s", step, health)


def collate(processor, samples) -> dict:
    """Chat-formatted inputs with labels on the answer (and its end token) only."""
    tokenizer = processor.tokenizer
    texts = []
    for sample in samples:
        messages = ocr_messages(OCR_INSTRUCTION) + [{"role": "assistant", "content": sample.target}]
        texts.append(processor.apply_chat_template(messages, tokenize=False).rstrip("\n"))
    inputs = processor(
        text=texts, images=[s.image for s in samples], return_tensors="pt", padding=True
    )
    labels = inputs["input_ids"].clone()
    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    header = len(tokenizer("assistant\n", add_special_tokens=False)["input_ids"])
    for row in range(labels.shape[0]):
        positions = (inputs["input_ids"][row] == start_id).nonzero().flatten()
        answer_start = int(positions[-1]) + 1 + header
        labels[row, :answer_start] = -100
    labels[inputs["attention_mask"] == 0] = -100
    inputs["labels"] = labels
    return inputs


def evaluate(
    processor, model, per_kind: int, max_new_tokens: int, kinds: tuple[Kind, ...] = KINDS
) -> dict[str, dict]:
    """CER, valid JSON and degeneration per kind on held-out pages (training/evaluation/heldout.py)."""
    from ..evaluation.heldout import evaluate_loaded

    results = evaluate_loaded(
        processor, model, kinds, per_kind, max_new_tokens, batch_size=per_kind
    )
    return {kind: {k: v for k, v in r.items() if k != "examples"} for kind, r in results.items()}


def _eval_kinds(config: SftConfig) -> tuple[Kind, ...]:
    """The standard kinds, and any other kind the mix trains (the open kinds of issue #27)."""
    return KINDS + tuple(kind for kind in OPEN if kind in parse_kinds(config.mix))


def _kind_of(step: int, config: SftConfig) -> Kind:
    """The kind of page in step ``step``'s batch: the mix (or the lines-only pair) in turn."""
    if step < config.lines_only_until * config.steps:
        kinds: tuple[Kind, ...] = ("chars", "line")
    else:
        kinds = parse_kinds(config.mix)
    return kinds[step % len(kinds)]


def _lr(step: int, config: SftConfig, rewarm_from: int | None = None) -> float:
    start = rewarm_from or 0
    if step - start < config.warmup:
        return config.lr * (step - start + 1) / config.warmup
    progress = (step - start - config.warmup) / max(1, config.steps - start - config.warmup)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _load_or_init(config: SftConfig, ckpt: Path):
    import torch

    if (ckpt / "trainer_state.pt").is_file():
        processor = load_processor(ckpt)
        model = load_model(ckpt)
        state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
        random.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        logger.info("resumed from step %d", state["step"])
        return processor, model, state
    if config.init_from is not None:
        # A released model folder (models/ocrguard-tiny) carries its step but no optimizer
        # state: training continues from its weights with a fresh optimizer.
        processor = load_processor(config.init_from)
        model = load_model(config.init_from)
        lineage = json.loads((Path(config.init_from) / "training_state.json").read_text())
        logger.info("continuing from %s at step %d", config.init_from, lineage["step"])
        return processor, model, {"step": lineage["step"], "rewarm_from": lineage["step"]}
    torch.manual_seed(config.seed)
    texts = [
        Generator(config.seed + 7).sample(i, KINDS[i % len(KINDS)]).target for i in range(3000)
    ]
    texts.append(OCR_INSTRUCTION)
    tokenizer = build_tokenizer(texts, vocab_size=config.vocab_size)
    processor = build_processor(tokenizer)
    model = build_model(tokenizer, config.size, seed=config.seed)
    return processor, model, {}


def _save(
    ckpt: Path, processor, model, optimizer, step: int, config: SftConfig, rewarm_from: int | None
) -> None:
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(tmp)
    model.save_pretrained(tmp)
    torch.save(
        {
            "step": step,
            "rewarm_from": rewarm_from,
            "optimizer": optimizer.state_dict(),
            "python_rng": random.getstate(),
            "torch_rng": torch.get_rng_state(),
            "config": json.loads(json.dumps(asdict(config), default=str)),
        },
        tmp / "trainer_state.pt",
    )
    if ckpt.exists():  # swap in the new checkpoint only once it is complete
        old = ckpt.with_name(ckpt.name + ".old")
        ckpt.rename(old)
        tmp.rename(ckpt)
        import shutil

        shutil.rmtree(old)
    else:
        tmp.rename(ckpt)
