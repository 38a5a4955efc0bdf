"""``python -m training``: the offline pipeline's commands.

    python -m training synth --out data/synth --seed 0 --count 1000
    python -m training sft --out runs/tiny --steps 8000
    python -m training eval --model models/ocrguard-tiny --per-kind 500
    python -m training health --model runs/tiny/checkpoint
    python -m training release --checkpoint runs/tiny/checkpoint --out models/ocrguard-tiny \
        --revision sft-step-8000
    python -m training export --out data/failures
    python -m training candidates --snapshot data/failures --model models/ocrguard-tiny --n 4
    python -m training pairs --snapshot data/failures --out data/pairs --judge structural
    python -m training dpo --model models/ocrguard-tiny --pairs data/pairs --out models --lora
    python -m training retrain --model models/ocrguard-tiny --work data/retrain --out models

Run ``python -m training COMMAND --help`` for each command's flags and examples.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="render synthetic pages with ground truth")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--count", type=int, default=1000)
    synth.add_argument("--kinds", default="chars,line,block,table,receipt,form")

    from .sft import SftConfig

    sft = commands.add_parser("sft", help="train the embedded model from scratch (resumable)")
    for f in dataclasses.fields(SftConfig):
        if f.name == "size":
            continue
        sft.add_argument(
            f"--{f.name.replace('_', '-')}",
            type=Path if f.name == "out" else (str if f.default is None else type(f.default)),
            default=f.default,
            help=f.metadata.get("help"),
        )

    evaluate = commands.add_parser(
        "eval", help="CER, valid JSON and degeneration of models on held-out pages"
    )
    evaluate.add_argument(
        "--model", action="append", required=True, help="model folder (repeat to compare)"
    )
    evaluate.add_argument("--per-kind", type=int, default=50)
    evaluate.add_argument("--kinds", default="line,block,table,receipt,form")
    evaluate.add_argument("--max-new-tokens", type=int, default=256)
    evaluate.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    evaluate.add_argument("--threads", type=int, default=2)
    evaluate.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where to decode (tokens/s are measured there)",
    )
    evaluate.add_argument(
        "--batch-size", type=int, default=8, help="pages decoded together (tokens/s is per batch)"
    )

    rel = commands.add_parser(
        "release", help="copy a checkpoint's inference files into a model folder with its card"
    )
    rel.add_argument("--checkpoint", type=Path, required=True, help="e.g. runs/tiny/checkpoint")
    rel.add_argument("--out", type=Path, required=True, help="e.g. models/ocrguard-tiny")
    rel.add_argument("--revision", required=True, help="e.g. sft-step-8000 (the card's revision)")
    rel.add_argument(
        "--card", type=Path, default=None, help="model card to install (default: keep --out's)"
    )

    health = commands.add_parser(
        "health", help="is the vision tower still telling images apart (visual-token collapse)"
    )
    health.add_argument("--model", type=Path, required=True, help="model or checkpoint folder")
    health.add_argument("--probe", type=int, default=8, help="probe images")

    _add_retraining_commands(commands)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    option = {"synth": "kinds", "eval": "kinds", "sft": "mix"}.get(args.command)
    kinds = ()
    if option is not None:  # a typo in a kind is a usage error, not a crash mid-run
        from .synth import parse_kinds

        try:
            kinds = parse_kinds(getattr(args, option))
        except ValueError as error:
            parser.error(f"--{option}: {error}")
    if args.command == "sft":  # so is a device this machine does not have
        from .sft import resolve_device

        try:
            resolve_device(args.device)
        except ValueError as error:
            parser.error(f"--device: {error}")
    if args.command == "synth":
        from .synth import write_dataset

        out = write_dataset(args.out, args.seed, args.count, kinds)
        print(f"wrote {args.count} samples to {out}")
        return 0
    if args.command == "sft":
        from .sft import run

        values = {
            f.name: getattr(args, f.name) for f in dataclasses.fields(SftConfig) if f.name != "size"
        }
        print(f"checkpoint: {run(SftConfig(**values))}")
        return 0
    if args.command == "release":
        from .release import release

        card_file = args.card or args.out / "README.md"
        if not card_file.is_file():
            parser.error(f"no model card at {card_file}: pass --card")
        card = _with_revision(card_file.read_text(encoding="utf-8"), args.revision)
        print(f"released: {release(args.checkpoint, args.out, args.revision, card)}")
        return 0
    if args.command == "health":
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from .health import probe_samples, vision_health

        processor = AutoProcessor.from_pretrained(args.model, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(args.model, local_files_only=True)
        result = vision_health(processor, model, probe_samples(args.probe))
        print(json.dumps(result))
        return 1 if result["collapsed"] else 0
    if args.command in RETRAINING_COMMANDS:
        return _run_retraining_command(args)
    from .evaluation import evaluate_models

    results = evaluate_models(
        args.model,
        kinds,
        args.per_kind,
        args.max_new_tokens,
        args.threads,
        args.batch_size,
        args.device,
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


def _with_revision(card: str, revision: str) -> str:
    """The card with its ``revision:`` line (read by the service) set to ``revision``."""
    lines = card.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("revision:"):
            lines[n] = f"revision: {revision}"
            return "\n".join(lines) + "\n"
    title, *rest = lines or [""]
    return "\n".join([title, "", f"revision: {revision}", *rest]) + "\n"


RETRAINING_COMMANDS = ("export", "candidates", "pairs", "dpo", "retrain")


def _add_retraining_commands(commands) -> None:
    from . import candidates, dpo, export, pairs, retrain

    def command(name: str, module, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    _add_fields(
        command("export", export, "drain the failure stream into a snapshot folder"),
        export.ExportConfig,
    )
    _add_fields(
        command("candidates", candidates, "sample candidate transcriptions per page"),
        candidates.CandidateConfig,
    )
    p = command("pairs", pairs, "build DPO pairs from a snapshot")
    p.add_argument("--snapshot", type=Path, required=True, help="folder written by export")
    p.add_argument("--out", type=Path, required=True, help="pairs folder to write")
    p.add_argument(
        "--candidates", type=Path, default=None, help="candidates.jsonl (default: the snapshot's)"
    )
    p.add_argument(
        "--judge",
        choices=("reference", "llm", "structural"),
        default="structural",
        help="scores candidates",
    )
    p.add_argument("--min-score", type=float, default=0.5, help="a candidate needs this score")
    p.add_argument(
        "--tokenizer",
        default=None,
        help="model folder whose tokenizer the guard reads (default: characters)",
    )
    p.add_argument(
        "--llm-url",
        default="http://127.0.0.1:8000/v1",
        help="OpenAI-compatible base URL of the llm judge",
    )
    p.add_argument("--llm-model", default="judge", help="model name sent to the llm judge")
    p.add_argument(
        "--llm-api-key",
        default=os.environ.get("OPENAI_API_KEY"),
        help="bearer token of the llm judge (default: $OPENAI_API_KEY)",
    )
    _add_fields(command("dpo", dpo, "DPO a model on pairs into a new version"), dpo.DpoArgs)
    _add_fields(
        command("retrain", retrain, "export, pairs, dpo and eval in one go"), retrain.RetrainConfig
    )


def _add_fields(parser: argparse.ArgumentParser, config) -> None:
    """One flag per dataclass field, its default and help from the field."""
    for f in dataclasses.fields(config):
        flag = f"--{f.name.replace('_', '-')}"
        helptext = f"{f.metadata.get('help', '')} (default: %(default)s)"
        if isinstance(f.default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=helptext
            )
        else:
            kind = Path if isinstance(f.default, Path) else type(f.default)
            parser.add_argument(flag, type=kind, default=f.default, help=helptext)


def _values(args: argparse.Namespace, config) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config)}


def _run_retraining_command(args: argparse.Namespace) -> int:
    if args.command == "export":
        import redis

        from .export import ExportConfig, export

        config = ExportConfig(**_values(args, ExportConfig))
        stats = export(redis.Redis.from_url(config.redis_url), config)
        print(json.dumps(dataclasses.asdict(stats)))
        return 0
    if args.command == "candidates":
        from .candidates import CandidateConfig, sample_candidates

        print(
            f"wrote {sample_candidates(CandidateConfig(**_values(args, CandidateConfig)))} candidates"
        )
        return 0
    if args.command == "pairs":
        from .judges import characters, make_judge, tokenizer_tokenize
        from .pairs import PairRules, build_pairs, report

        tokenize = characters
        if args.tokenizer:
            from transformers import AutoTokenizer

            tokenize = tokenizer_tokenize(
                AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True)
            )
        judge = make_judge(
            args.judge,
            tokenize=tokenize,
            llm_url=args.llm_url,
            llm_model=args.llm_model,
            llm_api_key=args.llm_api_key,
        )
        stats = build_pairs(
            args.snapshot, args.out, PairRules(judge, args.min_score, tokenize), args.candidates
        )
        print(report(stats))
        return 0
    if args.command == "dpo":
        from .dpo import DpoArgs, run

        print(f"new model version: {run(DpoArgs(**_values(args, DpoArgs)))}")
        return 0
    from .retrain import RetrainConfig, retrain

    result = retrain(RetrainConfig(**_values(args, RetrainConfig)))
    print(f"new model version: {result['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
