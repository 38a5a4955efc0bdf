"""``ocrguard-train`` (also ``python -m training``): the offline pipeline's commands.

    ocrguard-train synth --out data/synth --seed 0 --count 1000
    ocrguard-train sft --config training/recipes/ocrguard-tiny/stage-13.yaml
    ocrguard-train eval --model models/ocrguard-tiny --per-kind 500
    ocrguard-train health --model runs/tiny/checkpoint
    ocrguard-train release --checkpoint runs/tiny/checkpoint --out models/ocrguard-tiny \\
        --revision sft-step-8000
    ocrguard-train export --out data/failures
    ocrguard-train candidates --snapshot data/failures --model models/ocrguard-tiny --n 4
    ocrguard-train pairs --snapshot data/failures --out data/pairs --judge structural
    ocrguard-train dpo --model models/ocrguard-tiny --pairs data/pairs --out models --lora
    ocrguard-train interpolate --tuned models/ocrguard-tiny-dpo-v1 --keep 0.5 --out models/v1-half
    ocrguard-train retrain --model models/ocrguard-tiny --work data/retrain --out models

Each command is one config dataclass (a flag per field, its help from the field) and one
function. ``--config recipe.yaml`` reads the fields from a YAML recipe (keys are the field
names); flags given on the command line override the recipe. Run
``ocrguard-train COMMAND --help`` for a command's flags and examples.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    module: str
    """Module (under ``training``) holding the config class, the function and the examples."""
    config: str
    run: str = "main"


COMMANDS = (
    Command("synth", "render synthetic pages with ground truth", "model.synth", "SynthConfig"),
    Command("sft", "train the embedded model from scratch (resumable)", "model.sft", "SftConfig"),
    Command(
        "eval",
        "CER, valid JSON and degeneration of models side by side on held-out pages",
        "evaluation.heldout",
        "EvalConfig",
    ),
    Command(
        "health",
        "is the vision tower still telling images apart (visual-token collapse)",
        "model.health",
        "HealthConfig",
    ),
    Command(
        "release",
        "copy a checkpoint's inference files (bf16) into a model folder with its card",
        "model.release",
        "ReleaseConfig",
    ),
    Command("export", "drain the failure stream into a snapshot", "retrain.export", "ExportConfig"),
    Command(
        "candidates",
        "sample candidate transcriptions per failed page",
        "retrain.candidates",
        "CandidateConfig",
    ),
    Command("pairs", "build DPO pairs from a snapshot", "retrain.pairs", "PairsConfig"),
    Command("dpo", "DPO a model on pairs into a new version", "retrain.dpo", "DpoArgs"),
    Command(
        "interpolate",
        "keep a fraction of a version's update over its base (WiSE-FT)",
        "retrain.interpolate",
        "InterpolateConfig",
    ),
    Command(
        "retrain",
        "one retraining round: export, candidates, pairs, dpo, eval",
        "retrain.loop",
        "RetrainConfig",
    ),
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="ocrguard-train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    # Only the command asked for is imported (a GPU machine running `sft` has no redis).
    chosen = next((c for c in COMMANDS if c.name in argv[:1]), None)
    for command in COMMANDS:
        if command is not chosen:
            commands.add_parser(command.name, help=command.help)
            continue
        module = importlib.import_module(f"training.{command.module}")
        sub = commands.add_parser(
            command.name,
            help=command.help,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--config", type=Path, default=None, help="YAML recipe of this command's fields"
        )
        add_fields(sub, getattr(module, command.config))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    assert chosen is not None and chosen.name == args.command
    module = importlib.import_module(f"training.{chosen.module}")
    given = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        config = build_config(getattr(module, chosen.config), args.config, given)
    except (ValueError, TypeError, OSError) as error:
        parser.error(f"{args.command}: {error}")
    return int(getattr(module, chosen.run)(config) or 0)


def add_fields(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One flag per dataclass field. Defaults are left out of the namespace (SUPPRESS), so
    that only flags the user typed override a recipe."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        if f.metadata.get("cli") is False:
            continue
        flag = f"--{f.name.replace('_', '-')}"
        default = _default(f)
        helptext = f"{f.metadata.get('help', '')} (default: {default})"
        kind = hints[f.name]
        options: dict[str, Any] = {"default": argparse.SUPPRESS, "help": helptext}
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(kind) is list:
            parser.add_argument(flag, action="append", type=_scalar(kind), **options)
        else:
            parser.add_argument(flag, type=_scalar(kind), **options)


def build_config(config_class: type, recipe: Path | None, flags: dict[str, Any]) -> Any:
    """The config from a recipe file's fields, overridden by the typed flags."""
    values: dict[str, Any] = {}
    if recipe is not None:
        values.update(read_recipe(recipe, config_class))
    values.update(flags)
    hints = typing.get_type_hints(config_class)
    for name, value in list(values.items()):
        kind = _scalar(hints[name])
        if value is None or isinstance(value, list) or kind is str and hints[name] is not str:
            continue
        try:
            values[name] = kind(value)  # YAML reads 2e-4 as a string, 3 as an int for a float
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name}: {value!r} is not a {kind.__name__}") from error
    return config_class(**values)


def read_recipe(path: Path, config_class: type) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe is a mapping of field names to values")
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{path}: unknown fields {unknown}; known: {sorted(names)}")
    return values


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "required"


def _scalar(kind: Any) -> Any:
    """The argparse ``type`` of a field annotation (``X | None`` and ``list[X]`` read X)."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is not None and args:
        kind = args[0]
    return kind if kind in (int, float, str, Path) else str


if __name__ == "__main__":
    sys.exit(main())
