"""The README's example table is the embedded model's real output, served over real HTTP.

README.md ("The embedded model, for real") shows what the service returns for the committed
images under ``examples/``. This test serves the committed model and checks those outputs,
so a new release (or a change to the prompt, processor or engine) that changes them fails
here until the README is re-run and updated with it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import EMBEDDED_MODEL

from .test_api import ocr

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
README = EXAMPLES.parent / "README.md"

# (image, header, margin, footer, text, tokens generated), as the README's table states them.
# examples/page.png is the first held-out prose page: training.model.synth.Generator(EVAL_SEED)
# .sample(0, "block").
CASES = [
    ("line.png", "", "", "", "Gabriela Moura", 20),
    (
        "receipt.png",
        "Freitas",
        "",
        "OBRIGADO PELA PREFERÊNCIA",
        "1 UN AGUA 3,50\n" * 4 + "TOTAL R$ 95,00",
        58,
    ),
    (
        "page.png",
        "MENDES PIRES S/A",
        "",
        "Página 15",
        "governamentais:\nXXXVII - não haverá juízo ou tribunal de exceção",
        71,
    ),
]


def test_readme_shows_every_example():
    readme = README.read_text(encoding="utf-8")
    for image, header, _, footer, text, tokens in CASES:
        assert f"![](examples/{image})" in readme
        assert f"{tokens} tokens" in readme
        for part in (header, footer, *text.split("\n")):
            assert f"`{part}`" in readme or not part


def test_embedded_model_gives_the_readme_outputs(serve):
    with serve(EMBEDDED_MODEL, max_tokens=512) as url:
        pages = [
            ocr(url, (EXAMPLES / image).read_bytes(), filename=image).json()["pages"][0]
            for image, *_ in CASES
        ]
    for page, (image, header, margin, footer, text, tokens) in zip(pages, CASES, strict=True):
        got = (page["header"], page["margin"], page["footer"], page["text"])
        assert got == (header, margin, footer, text), image
        assert page["guard"]["tripped"] is False and page["finish_reason"] == "stop", image
        assert page["guard"]["tokens_generated"] == tokens, image
