"""Degeneration-prone traffic: seeded pages of the kinds that make OCR VLMs loop in the field,
mixed with ordinary pages, each with its ground truth.

What users of OCR models report loops on (DESIGN.md, "Why it exists"): tables with empty or
repeated cells, long receipts with repeated items, blank and near-blank pages, ruled and
form pages, dense small print, low contrast and noise, and text in fonts and sizes the model
never saw. Two splits that share no page: ``train`` (traffic served to produce failures for
the DPO pairs) and ``heldout`` (evaluation only), drawn from different seeds and, for every
page with text, from disjoint font families (training/model/fonts.py): the held-out split
never uses a family the training split does.

    python -m training eval --model models/ocrguard-tiny --prone 50
"""

from __future__ import annotations

import random
from typing import Literal, get_args

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.prompt import PageFields

from ..model.fonts import HELDOUT_FAMILIES, TRAINING_FAMILIES, available, font_path
from ..model.synth import Generator, Sample

ProneKind = Literal[
    "empty_table",
    "long_receipt",
    "blank",
    "near_blank",
    "ruled",
    "form_page",
    "small_print",
    "low_contrast",
    "noise",
    "unseen_font",
]
PRONE_KINDS: tuple[ProneKind, ...] = get_args(ProneKind)
ORDINARY_KINDS = ("line", "block", "table", "receipt", "form")
Split = Literal["train", "heldout"]

SEEDS: dict[Split, int] = {"train": 2_000_011, "heldout": 3_000_017}
"""Never used by SFT (seed 0 and its derivatives) nor by the SFT evaluation (1_000_003)."""
PRONE_SHARE = 0.6
"""Share of prone pages in a traffic mix; the rest are ordinary synthetic pages."""
WIDTH = 448


class Traffic:
    """``Traffic(split).sample(i)`` is the same page for the same arguments."""

    def __init__(self, split: Split = "train") -> None:
        if split not in SEEDS:
            raise ValueError(f"split {split!r}: train or heldout")
        self.split = split
        self.seed = SEEDS[split]
        families = TRAINING_FAMILIES if split == "train" else HELDOUT_FAMILIES
        self.fonts = [name for names in available(families).values() for name in names]
        if not self.fonts:
            raise RuntimeError("no font of this split is installed: run scripts/setup")
        self._ordinary = Generator(self.seed)

    def kind_of(self, index: int) -> str:
        rng = random.Random(f"{self.seed}:kind:{index}")
        if rng.random() < PRONE_SHARE:
            return rng.choice(PRONE_KINDS)
        return rng.choice(ORDINARY_KINDS)

    def sample(self, index: int, kind: str | None = None) -> Sample:
        kind = kind or self.kind_of(index)
        if kind in ORDINARY_KINDS:
            return self._ordinary.sample(index, kind)  # type: ignore[arg-type]
        if kind not in PRONE_KINDS:
            raise ValueError(f"unknown traffic kind {kind!r}")
        rng = random.Random(f"{self.seed}:{index}:{kind}")
        from faker import Faker

        fake = Faker("pt_BR")
        fake.seed_instance(rng.randrange(2**31))
        image, fields = getattr(self, f"_{kind}")(rng, fake)
        return Sample(self.seed, kind, image.convert("RGB"), fields)  # type: ignore[arg-type]

    # --- the prone kinds: (image, ground truth) ---

    def _empty_table(self, rng, fake):
        columns = rng.choice([["Item", "Qtd", "Valor"], ["Data", "Descrição", "Débito", "Crédito"]])
        rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for _ in range(rng.randint(5, 12)):
            cells = [fake.word() if rng.random() < 0.15 else "" for _ in columns]
            rows.append("| " + " | ".join(cells) + " |")
        return self._draw(rng, rows, (14, 18)), PageFields(text="\n".join(rows))

    def _long_receipt(self, rng, fake):
        head = fake.company()[:36]
        price = f"{rng.randint(1, 9)},{rng.choice(['00', '50', '90'])}"
        item = f"1 UN {rng.choice(['CAFE', 'PAO', 'AGUA', 'LEITE', 'SUCO'])} {price}"
        items = [item] * rng.randint(6, 14)
        if rng.random() < 0.5:  # a second repeated item
            items += [f"2 UN {rng.choice(['BALA', 'CHICLETE'])} 0,50"] * rng.randint(3, 6)
        body = [*items, f"TOTAL R$ {rng.randint(20, 199)},00"]
        footer = "OBRIGADO PELA PREFERÊNCIA"
        image = self._draw(rng, [head, "", *body, "", footer], (13, 17))
        return image, PageFields(header=head, footer=footer, text="\n".join(body))

    def _blank(self, rng, fake):
        shade = rng.randint(235, 255)
        return Image.new("L", (WIDTH, rng.randint(300, 600)), shade), PageFields()

    def _near_blank(self, rng, fake):
        height = rng.randint(400, 600)
        image = Image.new("L", (WIDTH, height), 255)
        footer = f"Página {rng.randint(1, 300)}"
        draw = ImageDraw.Draw(image)
        draw.text((WIDTH // 2 - 30, height - 30), footer, fill=40, font=self._font(rng, 12, 14))
        for _ in range(rng.randint(0, 6)):  # specks of dust
            x, y = rng.randrange(WIDTH), rng.randrange(height - 40)
            draw.point((x, y), fill=rng.randint(80, 160))
        return image, PageFields(footer=footer)

    def _ruled(self, rng, fake):
        height = rng.randint(360, 600)
        image = Image.new("L", (WIDTH, height), 255)
        draw = ImageDraw.Draw(image)
        gap = rng.randint(18, 32)
        for y in range(gap, height, gap):
            draw.line((10, y, WIDTH - 10, y), fill=rng.randint(120, 190), width=1)
        if rng.random() < 0.5:  # a margin line
            draw.line((50, 0, 50, height), fill=180, width=1)
        return self._noisy(rng, image), PageFields()

    def _form_page(self, rng, fake):
        labels = ["Nome", "CPF", "RG", "Endereço", "Cidade", "CEP", "Telefone", "E-mail"]
        lines = []
        for section in range(rng.randint(2, 3)):
            lines.append(
                f"{section + 1}. {rng.choice(['DADOS DO TITULAR', 'DEPENDENTE', 'CONTATO'])}"
            )
            lines += [
                f"{label}: ____________________" for label in rng.sample(labels, rng.randint(3, 6))
            ]
        return self._draw(rng, lines, (13, 17)), PageFields(text="\n".join(lines))

    def _small_print(self, rng, fake):
        makers = [fake.name, fake.street_address, fake.company, fake.city, fake.job]
        lines = [
            f"{rng.choice(makers)()} - {rng.choice(makers)()}"[:60]
            for _ in range(rng.randint(8, 14))
        ]
        return self._draw(rng, lines, (9, 11)), PageFields(text="\n".join(lines))

    def _low_contrast(self, rng, fake):
        lines = [fake.name(), fake.street_address(), f"{fake.city()} - {fake.estado_sigla()}"]
        image = self._draw(rng, lines, (18, 24), ink=(150, 200), paper=rng.randint(215, 240))
        return image, PageFields(text="\n".join(lines))

    def _noise(self, rng, fake):
        size = (WIDTH, rng.randint(200, 448))
        noise = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
        image = Image.blend(Image.new("L", size, 255), noise, rng.uniform(0.2, 0.6))
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0))), PageFields()

    def _unseen_font(self, rng, fake):
        text = rng.choice([fake.name, fake.company, fake.street_address, fake.cpf])()[:30]
        size = rng.choice([rng.randint(10, 14), rng.randint(32, 40)])  # sizes never trained
        return self._draw(rng, [text], (size, size)), PageFields(text=text)

    # --- drawing ---

    def _font(self, rng, low: int, high: int):
        path = font_path(rng.choice(self.fonts))
        return ImageFont.truetype(str(path), rng.randint(low, high))

    def _draw(self, rng, lines, sizes, ink=(0, 60), paper=255) -> Image.Image:
        font = self._font(rng, *sizes)
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        width = max((int(probe.textlength(line, font=font)) for line in lines if line), default=20)
        size = font.size
        while width > WIDTH - 16 and size > 8:  # shrink until the ground truth fits
            size -= 1
            font = font.font_variant(size=size)
            width = max(int(probe.textlength(line, font=font)) for line in lines if line)
        step = size + 8
        image = Image.new("L", (WIDTH, step * len(lines) + 16), paper)
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((8, 8 + n * step), line, fill=rng.randint(*ink), font=font)
        return self._noisy(rng, image)

    def _noisy(self, rng, image: Image.Image) -> Image.Image:
        if rng.random() < 0.3:
            noise = Image.frombytes("L", image.size, rng.randbytes(image.size[0] * image.size[1]))
            image = Image.blend(image, noise, rng.uniform(0.03, 0.1))
        return image
