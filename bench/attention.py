"""Where the embedded model looks while it writes: does it find the line and the letter?

    .venv/bin/python bench/attention.py --model models/ocrguard-tiny --pages 24

Teacher-forced: each held-out page (training/model/synth.py, the evaluation seed) goes through the
model with its true JSON as the answer, with eager attention so the weights can be read. For
every answer token whose first character is drawn on the page (header, body, footer, or a
single line; the margin note and the JSON syntax are skipped), each decoder head's attention
from the position that predicts that token is read over the image's visual tokens:

- **column r**: the correlation between the character's index in its line and the head's
  attention-weighted mean column; a head that reads left to right tracks it closely;
- **row hit**: the share of tokens whose most-attended visual token lies in a row that the
  character's line is drawn in; **column r on hits**: column r over those tokens only (does
  the head follow the letters once it is on the right line?);
- **image share**: the head's attention mass on visual tokens (the rest is on the text).

Each kind's row names the head that tracks columns best on that kind, and the head that
tracks them best on the first kind given (``--kinds``; by default single lines of random
words, where the model reads), so the same head can be followed across layouts. Row hits
on single-line pages are trivially high (one or two rows) and are shown for completeness.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.labeler import stream_texts  # noqa: E402
from app.prompt import OUTPUT_FIELDS, ocr_messages  # noqa: E402
from training.evaluation.heldout import EVAL_SEED  # noqa: E402
from training.model.synth import Generator, Sample, parse_kinds  # noqa: E402

SINGLE_LINE = ("chars", "words", "line")
PAGES = ("block", "wordblock")
MERGED = 28  # pixels per merged visual token side (patch 14, 2x2 merge)


def char_places(sample: Sample) -> list[tuple[int, int] | None]:
    """For each character of ``sample.target``: (drawn line, index in that line), or None.

    Lines are numbered as ``_render`` draws them: a single line is line 0; a page is header,
    a blank line, the body lines, a blank line and the footer. The margin note is drawn
    apart from the lines and is None here, as are the JSON's keys, quotes and escapes.
    """
    fields = sample.fields
    if sample.kind in SINGLE_LINE:
        line_of = {"text": [0]}
    else:
        body = fields.text.split("\n")
        line_of = {
            "header": [0],
            "text": [2 + n for n in range(len(body))],
            "footer": [len(body) + 3],
        }
    places: list[tuple[int, int] | None] = [None]  # "{"
    for n, name in enumerate(OUTPUT_FIELDS):
        if n:
            places.append(None)  # ","
        places += [None] * (len(json.dumps(name)) + 2)  # "name":"
        line_numbers = iter(line_of.get(name, []))
        line, column = next(line_numbers, None), 0
        for char in getattr(fields, name):
            escaped = len(json.dumps(char, ensure_ascii=False)) - 2
            if char == "\n":
                places += [None] * escaped
                line, column = next(line_numbers, None), 0
                continue
            places += [(line, column) if line is not None else None] * escaped
            column += 1
        places.append(None)  # closing quote
    places.append(None)  # "}"
    if len(places) != len(sample.target):
        raise AssertionError(f"character map of {len(places)} for a target of {len(sample.target)}")
    return places


def line_rows(sample: Sample, grid_rows: int) -> dict[int, tuple[float, set[int]]]:
    """Per drawn line: its centre and the visual-token rows its glyphs fall in.

    Recomputed from ``_render``'s layout: lines ``size + 8`` pixels apart from y = 6, page
    height ``(size + 8) * lines + 12``; the processor then resizes the page to whole tokens.
    """
    fields = sample.fields
    lines = 1 if sample.kind in SINGLE_LINE else len(fields.text.split("\n")) + 4
    height = sample.image.size[1]
    pitch = (height - 12) / lines
    scale = grid_rows * MERGED / height
    rows = {}
    for line in range(lines):
        top, bottom = (6 + line * pitch) * scale, (6 + line * pitch + pitch - 8) * scale
        covered = set(range(int(top // MERGED), min(grid_rows - 1, int(bottom // MERGED)) + 1))
        rows[line] = ((top + bottom) / 2 / MERGED - 0.5, covered)
    return rows


@dataclass
class HeadTrace:
    columns: list[float] = field(default_factory=list)  # attention-weighted mean column
    hit: list[bool] = field(default_factory=list)  # peak on the character's line
    image_share: float = 0.0


@dataclass
class KindTrace:
    char_index: list[int] = field(default_factory=list)
    heads: dict[tuple[int, int], HeadTrace] = field(default_factory=dict)

    def column_r(self, head: tuple[int, int], on_line_only: bool = False) -> float:
        import numpy as np

        traced = self.heads[head]
        keep = [hit or not on_line_only for hit in traced.hit]
        index = np.array(self.char_index)[keep]
        columns = np.array(traced.columns)[keep]
        if len(columns) < 3 or np.std(columns) == 0 or np.std(index) == 0:
            return float("nan")
        return float(np.corrcoef(index, columns)[0, 1])

    def best_head(self) -> tuple[int, int]:
        import math

        return max(self.heads, key=lambda h: -1 if math.isnan(r := self.column_r(h)) else r)


def trace(model, processor, kind: str, pages: int) -> KindTrace:
    import torch

    prompt = processor.apply_chat_template(ocr_messages(), add_generation_prompt=True)
    image_token = model.config.image_token_id
    generator = Generator(EVAL_SEED)
    result = KindTrace()
    for index in range(pages):
        sample = generator.sample(index, kind)
        places = char_places(sample)
        prompt_ids = processor(text=[prompt], images=[sample.image], return_tensors="pt")
        inputs = processor(
            text=[prompt + sample.target], images=[sample.image], return_tensors="pt"
        )
        ids = inputs["input_ids"][0]
        start = prompt_ids["input_ids"].shape[1]
        if not torch.equal(ids[:start], prompt_ids["input_ids"][0]):
            raise AssertionError("the prompt's tokens change when the answer follows it")
        _, patch_rows, patch_columns = inputs["image_grid_thw"][0].tolist()
        grid_rows, grid_columns = patch_rows // 2, patch_columns // 2
        visual = (ids == image_token).nonzero().flatten()
        token_row = torch.arange(grid_rows).repeat_interleave(grid_columns)
        token_column = torch.arange(grid_columns).repeat(grid_rows).float()
        rows = line_rows(sample, grid_rows)
        with torch.inference_mode():
            attentions = model(**inputs, output_attentions=True).attentions
        offset = 0
        answer = ids[start:].tolist()
        for k, piece in enumerate(stream_texts(processor.tokenizer, answer)):
            length = len(piece)  # 0 while a character is incomplete
            place = next((p for p in places[offset : offset + length] if p is not None), None)
            offset += length
            if place is None:
                continue
            line, column = place
            result.char_index.append(column)
            for layer, attention in enumerate(attentions):
                weights = attention[0, :, start + k - 1, visual]  # heads x visual tokens
                mass = weights.sum(1)
                mean_column = (weights * token_column).sum(1) / mass.clamp_min(1e-9)
                top_row = token_row[weights.argmax(1)]
                for head in range(weights.shape[0]):
                    trace_ = result.heads.setdefault((layer, head), HeadTrace())
                    trace_.columns.append(float(mean_column[head]))
                    trace_.hit.append(int(top_row[head]) in rows[line][1])
                    trace_.image_share += float(mass[head])
        if offset != len(sample.target):
            raise AssertionError("decoded answer tokens do not cover the target")
    return result


def _cells(result: KindTrace, head: tuple[int, int]) -> str:
    traced, tokens = result.heads[head], len(result.char_index)
    return (
        f"L{head[0]}h{head[1]} | {result.column_r(head):.2f} | {sum(traced.hit) / tokens:.0%} "
        f"| {result.column_r(head, on_line_only=True):.2f} "
        f"| {traced.image_share / tokens:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="repeatable; default the release")
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--kinds", default="words,line,wordblock,block", type=parse_kinds)
    args = parser.parse_args()
    unknown = [k for k in args.kinds if k not in SINGLE_LINE + PAGES]
    if unknown:
        parser.error(
            f"--kinds: {', '.join(unknown)} not traced (only {', '.join(SINGLE_LINE + PAGES)})"
        )

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.set_num_threads(2)
    print(
        "| model | kind | pages | tokens | head (best on kind) | column r | row hit | column r on hits "
        f"| image share | head (best on {args.kinds[0]}) | column r | row hit | column r on hits "
        "| image share |"
    )
    print("|---" * 14 + "|")
    for path in args.model or ["models/ocrguard-tiny"]:
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(
            path, local_files_only=True, attn_implementation="eager", dtype=torch.float32
        ).eval()
        reader = None
        for kind in args.kinds:
            result = trace(model, processor, kind, args.pages)
            reader = reader or result.best_head()
            print(
                f"| {Path(path).name} | {kind} | {args.pages} | {len(result.char_index)} "
                f"| {_cells(result, result.best_head())} | {_cells(result, reader)} |"
            )


if __name__ == "__main__":
    main()
