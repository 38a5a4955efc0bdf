"""Candidates: sample N transcriptions of each page, labelled by the guard.

    python -m training candidates --snapshot data/failures --model models/ocrguard-tiny --n 4

Every caught page is sampled (its degenerate samples are rejected texts too, and a clean one
may be its chosen), and so are kept clean pages, up to ``--max-clean-pages`` of them: a page
the model wrote cleanly greedily may loop when sampled, and that loop is a pair as well (the
published construction samples several candidates per training page). Appends to
``{snapshot}/candidates.jsonl`` one line per sample with its temperature, seed and index
in the page's batch (so it can be regenerated) and the guard's verdict. Pages that already
have candidates are skipped.
"""

from __future__ import annotations

import io
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from app.guard import DEFAULT_CONFIG
from app.labeler import label_ids

from ..model.loading import load_model, load_processor
from ..progress import Progress
from .cases import CANDIDATES_FILE, PageCase, gather, read_candidates

logger = logging.getLogger(__name__)


@dataclass
class CandidateConfig:
    snapshot: Path = field(default=Path("data/failures"), metadata={"help": "export folder"})
    model: str = field(default="models/ocrguard-tiny", metadata={"help": "model to sample"})
    n: int = field(default=4, metadata={"help": "samples per page"})
    temperature: float = field(default=0.7, metadata={"help": "sampling temperature"})
    seed: int = field(default=0, metadata={"help": "sample i of a page uses seed + i"})
    max_new_tokens: int = field(default=512, metadata={"help": "token limit per sample"})
    max_clean_pages: int = field(
        default=500, metadata={"help": "kept clean pages sampled at most (a seeded draw)"}
    )
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})

    def __post_init__(self) -> None:
        self.snapshot = Path(self.snapshot)
        if self.n < 1 or self.temperature <= 0:
            raise ValueError("n must be >= 1 and temperature > 0")


def main(config: CandidateConfig) -> int:
    print(f"wrote {sample_candidates(config)} candidates")
    return 0


def pages_to_sample(cases: list[PageCase], max_clean: int, seed: int) -> list[PageCase]:
    """Every caught page with an image, then a seeded draw of ``max_clean`` clean ones."""
    caught = [c for c in cases if c.caught and c.image]
    clean = [c for c in cases if not c.caught and c.image and c.returned_clean]
    random.Random(seed).shuffle(clean)
    return caught + clean[:max_clean]


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
    pages = [
        c
        for c in pages_to_sample(gather(config.snapshot), config.max_clean_pages, config.seed)
        if c.key not in done
    ]
    written = 0
    with out.open("a", encoding="utf-8") as f, Progress("candidates", len(pages), "page") as bar:
        for case in pages:
            image = Image.open(io.BytesIO((config.snapshot / case.image).read_bytes())).convert(
                "RGB"
            )
            prompt = processor.apply_chat_template(
                case.prompt.messages(), add_generation_prompt=True
            )
            inputs = processor(text=[prompt], images=[image], return_tensors="pt")
            torch.manual_seed(config.seed)  # one seed per page: the batch is reproducible
            with torch.inference_mode():
                generated = model.generate(
                    **inputs,
                    do_sample=True,
                    temperature=config.temperature,
                    top_k=0,
                    top_p=1.0,
                    num_return_sequences=config.n,
                    max_new_tokens=config.max_new_tokens,
                )
            for index, row in enumerate(generated[:, inputs["input_ids"].shape[1] :].tolist()):
                label = label_ids(tokenizer, row, eos=eos, max_tokens=config.max_new_tokens)
                item = {
                    "page_key": case.key,
                    "model": config.model,
                    "temperature": config.temperature,
                    "seed": config.seed,
                    "index": index,
                    "text": tokenizer.decode(label.token_ids, skip_special_tokens=True),
                    "tokens": len(label.token_ids),
                    "verdict": label.verdict.as_dict() if label.verdict else None,
                    "repeat_chars": _repeat_chars(tokenizer, label),
                    "hit_limit": label.hit_limit,
                    "degenerate": label.degenerate,
                    "guard_version": DEFAULT_CONFIG.version,
                }
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
                written += 1
            f.flush()
            bar.update()
    logger.info("wrote %d candidates to %s", written, out)
    return written


def _repeat_chars(tokenizer, label) -> int | None:
    """Characters of the candidate before its loop's second copy (None: it does not loop)."""
    if label.verdict is None:
        return None
    end = label.verdict.onset + label.verdict.period
    return len(tokenizer.decode(label.token_ids[:end], skip_special_tokens=True))
