"""Synthetic Brazilian Portuguese document pages with their ground-truth JSON, by seed.

Content: Faker ``pt_BR`` (names, addresses, companies, CPF/CNPJ, dates, money) and real
public-domain text: Brazilian federal law (the Constitution of 1988 and a decree; Brazilian
official acts are public domain, Lei 9.610/98 art. 8 IV) and the national anthem, in
``training/model/texts`` (sources in ``bench/guard/corpus/manifest.jsonl``, whose legitimate
set also reads them). Rendered with PIL in DejaVu
fonts (PIL's built-in font where DejaVu is missing) with mild noise, blur and rotation.

Kinds: ``line`` (one line; ``chars`` = random strings, the curriculum's language-free
start), ``block`` (header, body, footer, margin note), ``table``, ``receipt`` and ``form``
(the layouts with legitimately repeated values and empty cells where production models loop).
    python -m training synth --out data/synth --seed 0 --count 1000 --kinds line,receipt

Training drills, outside the acceptance evaluation: ``words`` (a line of corpus words in
random order) and ``wordblock`` (the block layout with such lines), where no memorised corpus
line can stand in for reading.
"""

from __future__ import annotations

import json
import random
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.prompt import PageFields

from ..progress import Progress
from .fonts import font_path

Kind = Literal[
    "chars", "words", "wordblock", "line", "block", "table", "receipt", "form",
    "open_line", "open_block",
]  # fmt: skip
# The kinds of page that are evaluated (and whose targets train the tokenizer).
KINDS: tuple[Kind, ...] = ("chars", "line", "block", "table", "receipt", "form")
# Training drills aimed at one weakness, outside the acceptance evaluation (held-out set unchanged).
DRILLS: tuple[Kind, ...] = ("words", "wordblock")
# Text that cannot be memorised, in many fonts (training/model/open_pages.py, issue #27):
# evaluated on its held-out split (other fonts, other words).
OPEN: tuple[Kind, ...] = ("open_line", "open_block")


def parse_kinds(text: str) -> tuple[Kind, ...]:
    """``"line,line,block"`` -> its kinds in order; ValueError naming any that cannot be drawn."""
    kinds = tuple(text.split(","))
    known = KINDS + DRILLS + OPEN
    unknown = set(kinds) - set(known)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; known: {', '.join(known)}")
    return kinds  # type: ignore[return-value]


TEXTS = Path(__file__).resolve().parent / "texts"
TEXT_SOURCES = sorted(TEXTS.glob("*.txt"))
# Debian's fonts-dejavu-core, found under OCRGUARD_FONT_DIR (training/model/fonts.py): these
# kinds are drawn in DejaVu only, as the embedded model was trained.
FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansCondensed.ttf",
)
CHARSET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789áéíóúâêôãõçÁÉÍÓÚÂÊÔÃÕÇàÀ.,;:-/()$%º "
PAGE_WIDTH = 448
BLOCK_LINE_CHARS = 48  # a prose block's lines (header and body) are cut to this length


@dataclass(frozen=True)
class Sample:
    seed: int
    kind: Kind
    image: Image.Image
    fields: PageFields

    @property
    def target(self) -> str:
        return self.fields.to_json()


@lru_cache
def _sentences() -> tuple[str, ...]:
    chunks: list[str] = []
    for path in TEXT_SOURCES:
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>|[#*_>|]", " ", text)
        for line in text.splitlines():
            line = " ".join(line.split())
            if len(line) >= 12:
                chunks.extend(_wrap_words(line, 60))
    if not chunks:
        raise RuntimeError(f"no pt-BR source text found under {TEXTS}")
    return tuple(chunks)


@lru_cache
def _vocabulary() -> tuple[str, ...]:
    words = {word for line in _sentences() for word in line.split()}
    return tuple(sorted(w for w in words if any(c.isalpha() for c in w)))  # no leaders ("....")


def _random_words(rng: random.Random, count: int, width: int) -> str:
    """``count`` corpus words in random order, cut to ``width`` characters (the drills)."""
    vocabulary = _vocabulary()
    return " ".join(rng.choice(vocabulary) for _ in range(count))[:width].strip()


def _wrap_words(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


@lru_cache(maxsize=64)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = font_path(name)
    if path is not None:
        return ImageFont.truetype(str(path), size)
    warnings.warn(
        f"{name} is missing: drawing with PIL's default font, so these pages differ from "
        "the training and evaluation pages (scripts/setup installs the fonts; "
        "OCRGUARD_FONT_DIR points elsewhere)",
        stacklevel=2,
    )
    return ImageFont.load_default(size=size)


# Glyph heights (pixels) and page width by kind. One merged visual token covers 28x28
# pixels; at 15-20 px a token spans ~3 characters and more than a line, which the 6 M model
# never learned to read (block CER 0.99 at step 5500), so prose blocks get glyphs nearly as
# large as single lines on a wider page (up to 640 x ~300 px, inside the processor's
# 448*448 pixel budget).
_GLYPHS: dict[str, tuple[int, int]] = {
    "chars": (22, 28),
    "words": (22, 28),
    "line": (22, 28),
    "block": (20, 24),
    "wordblock": (20, 24),
    "table": (15, 20),
    "receipt": (15, 20),
    "form": (15, 20),
}
_WIDTHS: dict[str, int] = {"block": 640, "wordblock": 640}


class Generator:
    """``Generator(seed).sample(i, kind)`` is the same page for the same arguments."""

    def __init__(self, seed: int = 0, max_line_chars: int = 40, split: str = "train") -> None:
        self.seed = seed
        self.max_line_chars = max_line_chars
        self.split = split
        """Split of the open kinds (their fonts and words); the other kinds have one."""
        self._open = None

    def sample(self, index: int, kind: Kind) -> Sample:
        if kind in OPEN:
            if self._open is None:
                from .open_pages import OpenPages

                self._open = OpenPages(self.split, self.seed)  # type: ignore[arg-type]
            return self._open.sample(index, kind)
        rng = random.Random(f"{self.seed}:{index}:{kind}")  # str seeds are hashed stably
        seed = rng.randrange(2**31)
        from faker import Faker

        fake = Faker("pt_BR")
        fake.seed_instance(rng.randrange(2**31))
        build = getattr(self, f"_{kind}")
        fields, lines, margin = build(rng, fake)
        # Single lines get bigger glyphs: one visual token covers 28x28 pixels, and a
        # token per 2-3 small characters was too coarse to read (issue #4).
        image = _render(rng, lines, margin, _GLYPHS[kind], _WIDTHS.get(kind, PAGE_WIDTH))
        return Sample(seed, kind, image, fields)

    def stream(self, kinds: tuple[Kind, ...], start: int = 0) -> Iterator[Sample]:
        index = start
        while True:
            yield self.sample(index, kinds[index % len(kinds)])
            index += 1

    # --- content of each kind: (fields, body lines to draw, margin note) ---

    def _chars(self, rng, fake):
        n = rng.randint(3, min(20, self.max_line_chars))
        text = "".join(rng.choice(CHARSET) for _ in range(n)).strip() or "a"
        return PageFields(text=text), [text], ""

    def _words(self, rng, fake):
        # Corpus words in random order. The model had memorised the 574 corpus lines and, on a
        # line from them, often read the first word or two and went on with another memorised
        # line (84 % of its line error at step 15000, issue #4); here no prior can finish it.
        text = _random_words(rng, rng.randint(2, 7), self.max_line_chars)
        return PageFields(text=text), [text], ""

    def _line(self, rng, fake):
        makers = [
            fake.name,
            fake.company,
            fake.street_address,
            lambda: fake.date(pattern="%d/%m/%Y"),
            fake.cpf,
            fake.cnpj,
            lambda: f"R$ {rng.randint(1, 99999)},{rng.randint(0, 99):02d}",
            lambda: fake.city() + " - " + fake.estado_sigla(),
            lambda: rng.choice(_sentences()),
        ]
        text = rng.choice(makers)()[: self.max_line_chars].strip()
        return PageFields(text=text), [text], ""

    def _block(self, rng, fake):
        header = rng.choice(
            [
                fake.company().upper(),
                "PREFEITURA MUNICIPAL DE " + fake.city().upper(),
                "DIÁRIO OFICIAL",
            ]
        )
        body = [rng.choice(_sentences())[:BLOCK_LINE_CHARS] for _ in range(rng.randint(2, 5))]
        return self._page(rng, fake, header, body)

    def _wordblock(self, rng, fake):
        # The block layout with every line made of corpus words in random order. On prose
        # blocks the model read a line's first letters and recalled some other corpus line,
        # header city and page number included (block CER 0.545 at step 19000, issue #4);
        # as the ``words`` drill did for single lines, this leaves nothing to recall.
        header = _random_words(rng, rng.randint(1, 4), BLOCK_LINE_CHARS).upper()
        body = [
            _random_words(rng, rng.randint(1, 9), BLOCK_LINE_CHARS)
            for _ in range(rng.randint(2, 5))
        ]
        return self._page(rng, fake, header, body)

    def _page(self, rng, fake, header: str, body: list[str]):
        footer = f"Página {rng.randint(1, 40)}" if rng.random() < 0.7 else ""
        margin = fake.date(pattern="%d/%m/%Y") if rng.random() < 0.3 else ""
        header = header[:BLOCK_LINE_CHARS]
        fields = PageFields(header=header, margin=margin, footer=footer, text="\n".join(body))
        return fields, [header, "", *body, "", footer], margin

    def _table(self, rng, fake):
        rows = ["| Item | Qtd | Valor |", "|---|---|---|"]
        value = f"{rng.randint(1, 99)},00"
        for _ in range(rng.randint(2, 6)):
            item = rng.choice([fake.word(), "", "Café", "Pão", "Leite"])
            qty = rng.choice(["1", "1", "2", ""])
            rows.append(f"| {item} | {qty} | {value if rng.random() < 0.6 else ''} |")
        return PageFields(text="\n".join(rows)), rows, ""

    def _receipt(self, rng, fake):
        head = fake.company()[:40]
        item = f"1 UN {rng.choice(['CAFE', 'PAO', 'AGUA', 'LEITE'])} {rng.randint(2, 9)},50"
        lines = [item] * rng.randint(2, 4) + [f"TOTAL R$ {rng.randint(10, 99)},00"]
        footer = "OBRIGADO PELA PREFERÊNCIA"
        fields = PageFields(header=head, footer=footer, text="\n".join(lines))
        return fields, [head, "", *lines, "", footer], ""

    def _form(self, rng, fake):
        lines = [
            "Nome: ____________________",
            "CPF: ____________________",
            f"{fake.city()}, ____ de ____ de 20__",
            "Assinatura: ______________",
        ]
        rng.shuffle(lines)
        lines = lines[: rng.randint(2, 4)]
        return PageFields(text="\n".join(lines)), lines, ""


def _render(
    rng: random.Random,
    lines: list[str],
    margin: str,
    sizes: tuple[int, int],
    page_width: int = PAGE_WIDTH,
) -> Image.Image:
    name = rng.choice(FONTS)
    size = rng.randint(*sizes)
    room = page_width - 16 - (90 if margin else 0)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    while True:  # shrink until every line fits: the ground truth must be visible
        font = _font(name, size)
        width = max((int(probe.textlength(line, font=font)) for line in lines if line), default=20)
        if width <= room or size <= 9:
            break
        size -= 1
    line_height = size + 8
    width = width + 16 + (90 if margin else 0)
    height = line_height * len(lines) + 12
    image = Image.new("L", (max(width, 28), max(height, 28)), 255)
    draw = ImageDraw.Draw(image)
    y = 6
    for line in lines:
        draw.text((8, y), line, fill=rng.randint(0, 60), font=font)
        y += line_height
    if margin:
        small = _font(FONTS[0], 12)
        draw.text((width - 86, 6), margin, fill=40, font=small)
    if rng.random() < 0.3:
        image = image.rotate(rng.uniform(-1.5, 1.5), fillcolor=255, expand=False)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.6)))
    if rng.random() < 0.3:
        # from our own generator: PIL's effect_noise is not seedable
        noise = Image.frombytes("L", image.size, rng.randbytes(image.size[0] * image.size[1]))
        image = Image.blend(image, noise, rng.uniform(0.03, 0.08))
    return image.convert("RGB")


@dataclass
class SynthConfig:
    """What ``synth`` renders and where."""

    out: Path = field(default=Path("data/synth"), metadata={"help": "folder to write"})
    seed: int = field(default=0, metadata={"help": "generator seed"})
    count: int = field(default=1000, metadata={"help": "pages to render"})
    kinds: str = field(
        default="chars,line,block,table,receipt,form",
        metadata={"help": f"page kinds drawn in turn ({', '.join(KINDS + DRILLS)})"},
    )

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        parse_kinds(self.kinds)
        if self.count < 1:
            raise ValueError("count must be >= 1")


def main(config: SynthConfig) -> int:
    write_dataset(config.out, config.seed, config.count, parse_kinds(config.kinds))
    print(f"wrote {config.count} samples to {config.out}")
    return 0


def write_dataset(out: Path, seed: int, count: int, kinds: tuple[Kind, ...]) -> Path:
    """Write ``count`` samples as PNG files plus ``samples.jsonl`` (the CLI's ``synth``)."""
    out.mkdir(parents=True, exist_ok=True)
    generator = Generator(seed)
    with (
        (out / "samples.jsonl").open("w", encoding="utf-8") as manifest,
        Progress("synth", total=count, unit="page") as progress,
    ):
        for index, sample in zip(range(count), generator.stream(kinds)):
            progress.update()
            name = f"{index:06d}-{sample.kind}.png"
            sample.image.save(out / name)
            manifest.write(
                json.dumps(
                    {
                        "image": name,
                        "kind": sample.kind,
                        "seed": seed,
                        "index": index,
                        "target": sample.target,
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    return out
