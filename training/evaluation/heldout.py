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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.guard import DEFAULT_CONFIG
from app.labeler import Label, label_ids
from app.page_lines import count_text_lines
from app.prompt import ocr_messages, parse_output

from ..model.loading import load_model, load_processor
from ..model.synth import Generator, Sample, parse_kinds
from ..progress import Progress
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
    prone: int = field(
        default=0,
        metadata={"help": "also held-out degeneration-prone pages, this many per prone kind"},
    )
    temperatures: str = field(
        default="0.7",
        metadata={"help": "sampled decodings of the prone pages besides greedy (comma list)"},
    )
    page_evidence: bool = field(
        default=False,
        metadata={
            "help": "label degeneration as the served guard does, with each page's count of "
            "text lines (app/page_lines.py); off: the text alone, as results so far were"
        },
    )

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("give at least one --model")
        parse_kinds(self.kinds)
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device {self.device!r}: cpu or cuda")
        self.sampled()  # a bad list is a usage error

    def sampled(self) -> tuple[float, ...]:
        values = tuple(float(t) for t in self.temperatures.split(",") if t.strip())
        if any(t <= 0 for t in values):
            raise ValueError("temperatures: each > 0 (greedy is always run)")
        return values


def main(config: EvalConfig) -> int:
    results = evaluate_models(
        config.model,
        parse_kinds(config.kinds),
        config.per_kind,
        config.max_new_tokens,
        config.threads,
        config.batch_size,
        config.device,
        prone_per_kind=config.prone,
        temperatures=config.sampled(),
        page_evidence=config.page_evidence,
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

    def add(self, error: float, exact: bool, valid_json: bool, read: Label) -> None:
        self.pages += 1
        self.cer_sum += error
        self.exact += exact
        self.valid_json += valid_json
        self.degenerate += read.degenerate
        self.tokens += len(read.token_ids)

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


Source = Callable[[int, str], Sample]
"""Page ``i`` of a kind: ``Generator(EVAL_SEED).sample`` or ``Traffic("heldout").sample``."""


def evaluate_model(
    model_path: str,
    kinds: tuple[str, ...],
    per_kind: int,
    max_new_tokens: int,
    batch_size: int = 8,
    seed: int = EVAL_SEED,
    records: list[dict] | None = None,
    device: str = "cpu",
    source: Source | None = None,
    temperature: float = 0.0,
) -> dict[str, dict]:
    processor = load_processor(model_path)
    model = load_model(model_path).eval()
    model.to(device)
    return evaluate_loaded(
        processor,
        model,
        kinds,
        per_kind,
        max_new_tokens,
        batch_size,
        seed,
        model_path,
        records,
        source=source,
        temperature=temperature,
    )


def evaluate_loaded(
    processor,
    model,
    kinds: tuple[str, ...],
    per_kind: int,
    max_new_tokens: int,
    batch_size: int = 8,
    seed: int = EVAL_SEED,
    label: str = "model",
    records: list[dict] | None = None,
    *,
    source: Source | None = None,
    temperature: float = 0.0,
    page_evidence: bool = False,
) -> dict[str, dict]:
    """``evaluate_model`` for a model already in memory (SFT's periodic evaluation).

    Pages come from ``source`` (default: the synthetic generator at ``seed``); greedy, or
    sampled at ``temperature`` with a seed per batch (the same pages and draws for every
    model). With ``records``, one dict per page (kind, reference, hypothesis, cer, and both
    sides' fields as dicts; ``hypothesis_fields`` is None where the output is not the JSON;
    ``page_lines``, the page's evidence when ``page_evidence`` labels with it; the generated
    ``token_ids`` up to the end of the sequence, and ``hit_limit``) is appended.
    """
    tokenizer = processor.tokenizer
    padding_side, backend_padding = tokenizer.padding_side, tokenizer.backend_tokenizer.padding
    tokenizer.padding_side = "left"
    pages = source or Generator(seed, split="heldout").sample
    try:
        return {
            kind: _evaluate_kind(
                processor, model, kind, pages, per_kind, max_new_tokens, batch_size,
                temperature, label, records, page_evidence,
            )
            for kind in kinds
        }  # fmt: skip
    finally:
        # A padded batch switches the fast tokenizer's own padding on, and save_pretrained
        # writes that into tokenizer.json: without this, a checkpoint saved after a periodic
        # evaluation would pad on the left wherever it is loaded.
        tokenizer.padding_side = padding_side
        if backend_padding is None:
            tokenizer.backend_tokenizer.no_padding()


def _evaluate_kind(
    processor,
    model,
    kind,
    pages,
    per_kind,
    max_new_tokens,
    batch_size,
    temperature,
    label,
    records,
    page_evidence=False,
) -> dict:
    import torch

    tokenizer = processor.tokenizer
    eos = model.generation_config.eos_token_id
    prompt = processor.apply_chat_template(ocr_messages(), add_generation_prompt=True)
    decoding = {"do_sample": False}
    if temperature > 0:
        decoding = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
    scores = KindScores()
    progress = Progress(f"eval {Path(label).name} {kind}", total=per_kind, unit="page")
    for start in range(0, per_kind, batch_size):
        samples = [pages(i, kind) for i in range(start, min(per_kind, start + batch_size))]
        inputs = processor(
            text=[prompt] * len(samples),
            images=[s.image for s in samples],
            return_tensors="pt",
            padding=True,
        ).to(model.device)
        if temperature > 0:
            torch.manual_seed(EVAL_SEED + start)  # the same draws for every model
        began = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, **decoding)
        scores.seconds += time.perf_counter() - began
        progress.update(len(samples))
        for sample, row in zip(samples, output[:, inputs["input_ids"].shape[1] :].tolist()):
            page_lines = count_text_lines(sample.image) if page_evidence else None
            read = label_ids(
                tokenizer, row, eos=eos, max_tokens=max_new_tokens, page_lines=page_lines
            )
            text = tokenizer.decode(read.token_ids, skip_special_tokens=True)
            fields = parse_output(text)
            hypothesis = fields.transcription if fields is not None else text
            reference = sample.fields.transcription
            error = cer(hypothesis, reference)
            scores.add(error, hypothesis == reference, fields is not None, read)
            if records is not None:
                records.append(
                    {
                        "kind": kind,
                        "reference": reference,
                        "hypothesis": hypothesis,
                        "cer": error,
                        "degenerate": read.degenerate,
                        "reference_fields": asdict(sample.fields),
                        "hypothesis_fields": asdict(fields) if fields is not None else None,
                        "page_lines": page_lines,
                        "token_ids": read.token_ids,
                        "hit_limit": read.hit_limit,
                    }
                )
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
    progress.close()
    logger.info("%s %s: %s", label, kind, scores.summary())
    return {**scores.summary(), "examples": scores.examples}


def evaluate_models(
    models: list[str],
    kinds: tuple[str, ...],
    per_kind: int,
    max_new_tokens: int,
    threads: int = 2,
    batch_size: int = 8,
    device: str = "cpu",
    prone_per_kind: int = 0,
    temperatures: tuple[float, ...] = (0.7,),
    page_evidence: bool = False,
) -> dict[str, Any]:
    """Evaluate each model on the same pages and print one table (tokens/s on ``device``):
    the standard held-out kinds greedily; with ``prone_per_kind``, the held-out
    degeneration-prone traffic greedily and at each of ``temperatures``. With
    ``page_evidence``, degeneration is labelled with each page's count of text lines."""
    import torch

    from ..retrain.traffic import PRONE_KINDS, Traffic

    torch.set_num_threads(threads)
    results: dict[str, Any] = {
        "models": {},
        "prone": {},
        "guard_version": DEFAULT_CONFIG.version,
        "page_evidence": page_evidence,
        "seed": EVAL_SEED,
        "per_kind": per_kind,
        "prone_per_kind": prone_per_kind,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,  # CER moves with the padding of a batch: compare like with like
        "device": device,
    }
    prone = Traffic("heldout").sample
    for m in models:
        processor, model = load_processor(m), load_model(m).eval().to(device)
        results["models"][m] = evaluate_loaded(
            processor, model, kinds, per_kind, max_new_tokens, batch_size, label=m,
            page_evidence=page_evidence,
        )  # fmt: skip
        if prone_per_kind:
            results["prone"][m] = {
                _decoding(t): evaluate_loaded(
                    processor, model, PRONE_KINDS, prone_per_kind, max_new_tokens, batch_size,
                    label=m, source=prone, temperature=t, page_evidence=page_evidence,
                )
                for t in (0.0, *temperatures)
            }  # fmt: skip
    print(render_tables(results, batch_size, device))
    return results


def _decoding(temperature: float) -> str:
    return "greedy" if temperature == 0 else f"T={temperature:g}"


def render_tables(results: dict[str, Any], batch_size: int, device: str) -> str:
    """The results as markdown: the standard kinds, then the prone traffic by decoding.
    ``batch_size`` and ``device`` stand in where the results do not record their own."""
    lines = [
        f"held-out pages: {results['per_kind']} per kind, seed {EVAL_SEED}, greedy, "
        f"max_new_tokens {results['max_new_tokens']}, "
        f"batch {results.get('batch_size', batch_size)}, device {results.get('device', device)}, "
        f"guard {results.get('guard_version', DEFAULT_CONFIG.version)}"  # that labelled them
        + (" with the page's line count" if results.get("page_evidence") else ""),
        "",
        "| model | kind | pages | CER | exact | valid JSON | degeneration | mean tokens | tokens/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, by_kind in results["models"].items():
        lines += [_row(Path(model).name, kind, s) for kind, s in by_kind.items()]
    if results["prone"]:
        lines += [
            "",
            f"held-out degeneration-prone traffic: {results['prone_per_kind']} pages per kind "
            "(training/retrain/traffic.py, split heldout)",
            "",
            "| model | decoding | kind | pages | CER | exact | valid JSON | degeneration "
            "| mean tokens | tokens/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for model, decodings in results["prone"].items():
            for decoding, by_kind in decodings.items():
                rows = [_row(f"{Path(model).name} | {decoding}", k, s) for k, s in by_kind.items()]
                lines += [
                    *rows,
                    _row(f"{Path(model).name} | {decoding}", "**all**", _pooled(by_kind)),
                ]
    return "\n".join(lines)


def _row(label: str, kind: str, s: dict) -> str:
    return (
        f"| {label} | {kind} | {s['pages']} | {s['cer']:.3f} | {s['exact_rate']:.1%} | "
        f"{s['valid_json_rate']:.1%} | {s['degeneration_rate']:.1%} | "
        f"{s['mean_generated_tokens']} | {s['tokens_per_second']} |"
    )


def _pooled(by_kind: dict[str, dict]) -> dict:
    """Page-weighted means over kinds (the degeneration rate of the whole set)."""
    pages = sum(s["pages"] for s in by_kind.values())
    mean = lambda key: sum(s[key] * s["pages"] for s in by_kind.values()) / max(1, pages)  # noqa: E731
    return {
        "pages": pages,
        "cer": mean("cer"),
        "exact_rate": mean("exact_rate"),
        "valid_json_rate": mean("valid_json_rate"),
        "degeneration_rate": mean("degeneration_rate"),
        "mean_generated_tokens": round(mean("mean_generated_tokens"), 1),
        "tokens_per_second": round(mean("tokens_per_second"), 1),
    }
