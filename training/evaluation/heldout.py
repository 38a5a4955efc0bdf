"""Held-out evaluation: CER, valid JSON, degeneration rate and speed of models side by side.

Degeneration follows the DPO paper's definition: a page is degenerate when its greedy output
trips the guard's detector (the same detector the service runs) or hits the token limit.
Every model sees the same pages (seeds never used in training) with the same decoding.

    python -m training eval --model models/ocrguard-tiny --per-kind 500
    python -m training eval --model /tmp/old --model models/ocrguard-tiny --out eval.json
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.guard import DEFAULT_CONFIG
from app.labeler import label_ids
from app.prompt import ocr_messages, parse_output

from ..model.loading import load_model, load_processor
from ..model.synth import Generator, Kind, parse_kinds
from .cer import cer

logger = logging.getLogger(__name__)

EVAL_SEED = 1_000_003


@dataclass
class EvalConfig:
    """Which models, on which held-out pages, decoded how."""

    model: list[str] = field(
        default_factory=list, metadata={"help": "model folder (repeat the flag to compare)"}
    )
    per_kind: int = field(default=50, metadata={"help": "held-out pages per kind"})
    kinds: str = field(default="line,block,table,receipt,form", metadata={"help": "page kinds"})
    max_new_tokens: int = field(default=256, metadata={"help": "token limit per page"})
    out: Path | None = field(default=None, metadata={"help": "write the results as JSON here"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    device: str = field(
        default="cpu", metadata={"help": "cpu or cuda (tokens/s are measured there)"}
    )
    batch_size: int = field(
        default=8, metadata={"help": "pages decoded together (tokens/s is per batch)"}
    )

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("give at least one --model")
        parse_kinds(self.kinds)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device {self.device!r}: cpu or cuda")


def main(config: EvalConfig) -> int:
    results = evaluate_models(
        config.model,
        parse_kinds(config.kinds),
        config.per_kind,
        config.max_new_tokens,
        config.threads,
        config.batch_size,
        config.device,
    )
    if config.out is not None:
        Path(config.out).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


@dataclass
class KindScores:
    pages: int = 0
    cer_sum: float = 0.0
    exact: int = 0
    valid_json: int = 0
    degenerate: int = 0
    tokens: int = 0
    seconds: float = 0.0
    examples: list[dict] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        n = max(1, self.pages)
        return {
            "pages": self.pages,
            "cer": round(self.cer_sum / n, 4),
            "exact_rate": round(self.exact / n, 4),
            "valid_json_rate": round(self.valid_json / n, 4),
            "degeneration_rate": round(self.degenerate / n, 4),
            "mean_generated_tokens": round(self.tokens / n, 1),
            "tokens_per_second": round(self.tokens / self.seconds, 1) if self.seconds else 0.0,
        }


def evaluate_model(
    model_path: str,
    kinds: tuple[Kind, ...],
    per_kind: int,
    max_new_tokens: int,
    batch_size: int = 8,
    seed: int = EVAL_SEED,
    records: list[dict] | None = None,
    device: str = "cpu",
) -> dict[str, dict]:

    processor = load_processor(model_path)
    model = load_model(model_path).eval()
    model.to(device)
    return evaluate_loaded(
        processor, model, kinds, per_kind, max_new_tokens, batch_size, seed, model_path, records
    )


def evaluate_loaded(
    processor,
    model,
    kinds: tuple[Kind, ...],
    per_kind: int,
    max_new_tokens: int,
    batch_size: int = 8,
    seed: int = EVAL_SEED,
    label: str = "model",
    records: list[dict] | None = None,
) -> dict[str, dict]:
    """``evaluate_model`` for a model already in memory (SFT's periodic evaluation).

    With ``records``, one dict per page (kind, reference, hypothesis, cer, and both sides'
    fields as dicts; ``hypothesis_fields`` is None where the output is not the JSON) is appended.
    """
    tokenizer = processor.tokenizer
    padding_side, backend_padding = tokenizer.padding_side, tokenizer.backend_tokenizer.padding
    tokenizer.padding_side = "left"
    try:
        return _evaluate(
            processor, model, kinds, per_kind, max_new_tokens, batch_size, seed, label, records
        )
    finally:
        # A padded batch switches the fast tokenizer's own padding on, and save_pretrained
        # writes that into tokenizer.json: without this, a checkpoint saved after a periodic
        # evaluation would pad on the left wherever it is loaded.
        tokenizer.padding_side = padding_side
        if backend_padding is None:
            tokenizer.backend_tokenizer.no_padding()


def _evaluate(
    processor, model, kinds, per_kind, max_new_tokens, batch_size, seed, label, records
) -> dict[str, dict]:
    import torch

    tokenizer = processor.tokenizer
    eos = model.generation_config.eos_token_id
    prompt = processor.apply_chat_template(ocr_messages(), add_generation_prompt=True)
    generator = Generator(seed)
    results: dict[str, dict] = {}
    for kind in kinds:
        scores = KindScores()
        for start in range(0, per_kind, batch_size):
            samples = [
                generator.sample(i, kind) for i in range(start, min(per_kind, start + batch_size))
            ]
            inputs = processor(
                text=[prompt] * len(samples),
                images=[s.image for s in samples],
                return_tensors="pt",
                padding=True,
            ).to(model.device)
            began = time.perf_counter()
            with torch.inference_mode():
                output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            scores.seconds += time.perf_counter() - began
            for sample, row in zip(samples, output[:, inputs["input_ids"].shape[1] :].tolist()):
                read = label_ids(tokenizer, row, eos=eos, max_tokens=max_new_tokens)
                text = tokenizer.decode(read.token_ids, skip_special_tokens=True)
                scores.pages += 1
                scores.tokens += len(read.token_ids)
                fields = parse_output(text)
                hypothesis = fields.transcription if fields is not None else text
                reference = sample.fields.transcription
                error = cer(hypothesis, reference)
                scores.cer_sum += error
                scores.exact += hypothesis == reference
                if records is not None:
                    records.append(
                        {
                            "kind": kind,
                            "reference": reference,
                            "hypothesis": hypothesis,
                            "cer": error,
                            "reference_fields": asdict(sample.fields),
                            "hypothesis_fields": asdict(fields) if fields is not None else None,
                        }
                    )
                scores.valid_json += fields is not None
                scores.degenerate += read.degenerate
                if len(scores.examples) < 3:
                    scores.examples.append(
                        {
                            "target": sample.target,
                            "output": text[:300],
                            "degenerate": read.verdict.kind
                            if read.verdict
                            else ("length" if read.hit_limit else None),
                        }
                    )
        results[kind] = {**scores.summary(), "examples": scores.examples}
        logger.info("%s %s: %s", label, kind, scores.summary())
    return results


def evaluate_models(
    models: list[str],
    kinds: tuple[str, ...],
    per_kind: int,
    max_new_tokens: int,
    threads: int = 2,
    batch_size: int = 8,
    device: str = "cpu",
) -> dict[str, dict]:
    """Evaluate each model on the same pages and print one table (tokens/s on ``device``)."""
    import torch

    torch.set_num_threads(threads)
    results = {
        m: evaluate_model(m, kinds, per_kind, max_new_tokens, batch_size, device=device)
        for m in models
    }
    print(
        f"held-out pages: {per_kind} per kind, seed {EVAL_SEED}, greedy, max_new_tokens {max_new_tokens}, "
        f"batch {batch_size}, device {device}, "
        f"guard {DEFAULT_CONFIG.version}\n"
    )
    print(
        "| model | kind | pages | CER | exact | valid JSON | degeneration | mean tokens | tokens/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for model, by_kind in results.items():
        for kind, s in by_kind.items():
            print(
                f"| {Path(model).name} | {kind} | {s['pages']} | {s['cer']:.3f} | {s['exact_rate']:.1%} | "
                f"{s['valid_json_rate']:.1%} | "
                f"{s['degeneration_rate']:.1%} | {s['mean_generated_tokens']} | {s['tokens_per_second']} |"
            )
    return {
        "models": results,
        "guard_version": DEFAULT_CONFIG.version,
        "seed": EVAL_SEED,
        "per_kind": per_kind,
        "max_new_tokens": max_new_tokens,
    }
