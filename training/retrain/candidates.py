"""Candidates: sample N transcriptions per page that has no trusted chosen, labelled by the guard.

    python -m training candidates --snapshot data/failures --model models/ocrguard-tiny --n 4

Appends to ``{snapshot}/candidates.jsonl`` one line per sample with its temperature and
seed (so a sample can be regenerated) and the guard's verdict; ``pairs`` lets a judge pick
the best clean one. Pages that already have candidates are skipped.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from app.failure_record import FailureRecord
from app.guard import DEFAULT_CONFIG
from app.labeler import label_ids

from ..model.loading import load_model, load_processor
from ..progress import Progress
from .export import read_snapshot
from .pairs import CANDIDATES_FILE, PairRules, needs_candidates, page_key, read_candidates

logger = logging.getLogger(__name__)


@dataclass
class CandidateConfig:
    snapshot: Path = field(default=Path("data/failures"), metadata={"help": "export folder"})
    model: str = field(default="models/ocrguard-tiny", metadata={"help": "model to sample"})
    n: int = field(default=4, metadata={"help": "samples per page"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature"})
    seed: int = field(default=0, metadata={"help": "sample i of a page uses seed + i"})
    max_new_tokens: int = field(default=512, metadata={"help": "token limit per sample"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})

    def __post_init__(self) -> None:
        self.snapshot = Path(self.snapshot)
        if self.n < 1 or self.temperature <= 0:
            raise ValueError("n must be >= 1 and temperature > 0")


def main(config: CandidateConfig) -> int:
    print(f"wrote {sample_candidates(config)} candidates")
    return 0


def sample_candidates(config: CandidateConfig) -> int:
    """Sample the pages that need it; return how many candidates were written."""
    import torch
    from PIL import Image

    torch.set_num_threads(config.threads)
    out = config.snapshot / CANDIDATES_FILE
    done = set(read_candidates(out))
    processor = load_processor(config.model)
    model = load_model(config.model).eval()
    tokenizer = processor.tokenizer
    eos = model.generation_config.eos_token_id
    written = 0
    rules = PairRules()
    lines = read_snapshot(config.snapshot)
    progress = Progress("candidates", total=len(lines), unit="record")
    for line in lines:
        progress.update()
        key = page_key(line["record"])
        if key in done or not needs_candidates(line, rules):
            continue
        done.add(key)
        image = Image.open(io.BytesIO((config.snapshot / line["image"]).read_bytes())).convert(
            "RGB"
        )
        prompt = processor.apply_chat_template(
            FailureRecord(**line["record"]).page_prompt.messages(), add_generation_prompt=True
        )
        inputs = processor(text=[prompt], images=[image], return_tensors="pt")
        with out.open("a", encoding="utf-8") as f:
            for i in range(config.n):
                seed = config.seed + i
                torch.manual_seed(seed)
                with torch.inference_mode():
                    generated = model.generate(
                        **inputs,
                        do_sample=True,
                        temperature=config.temperature,
                        max_new_tokens=config.max_new_tokens,
                    )
                label = label_ids(
                    tokenizer,
                    generated[0, inputs["input_ids"].shape[1] :].tolist(),
                    eos=eos,
                    max_tokens=config.max_new_tokens,
                )
                item = {
                    "page_key": key,
                    "model": config.model,
                    "temperature": config.temperature,
                    "seed": seed,
                    "text": tokenizer.decode(label.token_ids, skip_special_tokens=True),
                    "tokens": len(label.token_ids),
                    "verdict": label.verdict.as_dict() if label.verdict else None,
                    "hit_limit": label.hit_limit,
                    "degenerate": label.degenerate,
                    "guard_version": DEFAULT_CONFIG.version,
                }
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
                written += 1
    progress.close(written=written)
    logger.info("wrote %d candidates to %s", written, out)
    return written
