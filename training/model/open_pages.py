"""Pages of text that cannot be memorised (issue #27): words from a pt-BR frequency list,
Faker's pt_BR names, addresses, companies, dates, amounts and CPF/CNPJ, codes, in many font
families and sizes from 10 to 40 px, as tight crops or on a whole page, with scanner and
phone artefacts.

Two splits that share no font family and no word: ``train`` draws the training families
(training/model/fonts.py) and 90 % of the words, ``heldout`` the held-out families and the
other 10 % (a stable hash of the word decides), from seeds of its own. A held-out page tests
reading: neither its glyphs nor its words were seen in training.

Kinds: ``open_line`` (one line) and ``open_block`` (five lines). Word list: the ``wordfreq``
package's Portuguese list (Robyn Speer et al., https://github.com/rspeer/wordfreq; data
under CC BY-SA 4.0), its 30 000 most frequent alphabetic words. ``OCRGUARD_WORDLIST`` names a
file holding that same list, one word a line (``scripts/gpu_prepare`` writes it, so that a GPU
machine needs no 57 MB wheel of every language's lists).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from functools import lru_cache
from typing import Literal

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.prompt import PageFields

from .fonts import HELDOUT_FAMILIES, TRAINING_FAMILIES, available, font_path

Split = Literal["train", "heldout"]
OPEN_KINDS = ("open_line", "open_block")
HELDOUT_SHARE = 10  # percent of the words kept for evaluation
BLOCK_LINES = 5
LINE_CHARS = 40
PAGE_WIDTH = 448


WORDLIST_SIZE = 30_000


@lru_cache
def words(split: Split) -> tuple[str, ...]:
    pool = [w for w in word_list() if w.isalpha()]
    held = [w for w in pool if _held_out(w)]
    return tuple(held if split == "heldout" else [w for w in pool if not _held_out(w)])


def word_list() -> list[str]:
    """The Portuguese list, most frequent first: from ``OCRGUARD_WORDLIST`` or from wordfreq."""
    path = os.environ.get("OCRGUARD_WORDLIST")
    if path:
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    from wordfreq import top_n_list

    return top_n_list("pt", WORDLIST_SIZE)


def _held_out(word: str) -> bool:
    return int(hashlib.blake2b(word.encode(), digest_size=2).hexdigest(), 16) % 100 < HELDOUT_SHARE


class OpenPages:
    """``OpenPages(split, seed).sample(i, kind)`` is the same page for the same arguments."""

    def __init__(self, split: Split = "train", seed: int = 0) -> None:
        self.split, self.seed = split, seed
        families = TRAINING_FAMILIES if split == "train" else HELDOUT_FAMILIES
        self.fonts = [name for names in available(families).values() for name in names]
        if not self.fonts:
            raise RuntimeError("no font of this split is installed: run scripts/setup")

    def sample(self, index: int, kind: str):
        from faker import Faker

        from .synth import Sample

        if kind not in OPEN_KINDS:
            raise ValueError(f"unknown open kind {kind!r}")
        rng = random.Random(f"open:{self.split}:{self.seed}:{index}:{kind}")
        fake = Faker("pt_BR")
        fake.seed_instance(rng.randrange(2**31))
        count = 1 if kind == "open_line" else BLOCK_LINES
        lines = [self._line(rng, fake) for _ in range(count)]
        image = self._render(rng, lines)
        return Sample(self.seed, kind, image, PageFields(text="\n".join(lines)))  # type: ignore[arg-type]

    def _line(self, rng: random.Random, fake) -> str:
        vocabulary = words(self.split)
        makers = [
            lambda: " ".join(rng.choice(vocabulary) for _ in range(rng.randint(2, 7))),
            lambda: " ".join(rng.choice(vocabulary) for _ in range(rng.randint(2, 5))).capitalize(),
            fake.name,
            fake.street_address,
            fake.company,
            lambda: f"{fake.city()} - {fake.estado_sigla()}",
            lambda: fake.date(pattern=rng.choice(["%d/%m/%Y", "%d.%m.%y", "%Y-%m-%d"])),
            lambda: (
                f"R$ {format(rng.randint(0, 99999), ',').replace(',', '.')},{rng.randint(0, 99):02d}"
            ),
            fake.cpf,
            fake.cnpj,
            fake.phone_number,
            lambda: "".join(
                rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(rng.randint(5, 12))
            ),
            lambda: (
                f"{rng.choice(vocabulary).capitalize()}: {rng.choice(vocabulary)} {rng.randint(1, 999)}"
            ),
        ]
        return rng.choice(makers)()[:LINE_CHARS].strip() or "texto"

    def _render(self, rng: random.Random, lines: list[str]) -> Image.Image:
        size = rng.randint(10, 40) if len(lines) == 1 else rng.randint(12, 26)
        font = ImageFont.truetype(str(font_path(rng.choice(self.fonts))), size)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        while (
            max(probe.textlength(line, font=font) for line in lines) > PAGE_WIDTH - 16 and size > 10
        ):
            size -= 1
            font = font.font_variant(size=size)
        width = int(max(probe.textlength(line, font=font) for line in lines)) + 16
        step = size + rng.randint(4, 10)
        height = step * len(lines) + 12
        tight = rng.random() < 0.5  # a tight crop, or the lines somewhere on a page
        page_w = width if tight else PAGE_WIDTH
        page_h = height if tight else max(height + 40, rng.randint(height + 40, 448))
        x = 8 if tight else rng.randint(8, max(8, page_w - width))
        y0 = 6 if tight else rng.randint(6, max(6, page_h - height))
        paper = rng.randint(215, 255)
        image = Image.new("L", (max(page_w, 28), max(page_h, 28)), paper)
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((x, y0 + n * step), line, fill=rng.randint(0, 90), font=font)
        return _artefacts(rng, image).convert("RGB")


def _artefacts(rng: random.Random, image: Image.Image) -> Image.Image:
    """What scanners and phone cameras do to a page: tilt, blur, noise, uneven light, JPEG."""
    if rng.random() < 0.4:
        image = image.rotate(
            rng.uniform(-2.5, 2.5), fillcolor=int(image.getpixel((0, 0))), expand=False
        )
    if rng.random() < 0.35:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.35:
        noise = Image.frombytes("L", image.size, rng.randbytes(image.size[0] * image.size[1]))
        image = Image.blend(image, noise, rng.uniform(0.03, 0.12))
    if rng.random() < 0.3:  # light falling off across the page (a phone photo)
        shade = Image.linear_gradient("L").resize(image.size).rotate(rng.choice([0, 90, 180, 270]))
        image = Image.blend(
            image, Image.eval(shade, lambda v: 140 + v // 3), rng.uniform(0.1, 0.35)
        )
    if rng.random() < 0.35:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(25, 70))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return image
