"""The font families pages are drawn in: which ones training may use, which are held out.

Debian packages (installed by scripts/setup): fonts-dejavu-core, fonts-liberation,
fonts-noto-core, fonts-freefont-ttf, fonts-urw-base35, fonts-open-sans, fonts-lato,
fonts-crosextra-carlito and fonts-crosextra-caladea. Held-out families are never drawn in
a training page: a page in one of them tests reading, not a memory of the glyphs.
``OCRGUARD_FONT_DIR`` points at another root (scripts/gpu_prepare carries the files).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

FONT_ROOT = Path(os.environ.get("OCRGUARD_FONT_DIR", "/usr/share/fonts"))

# family -> file names (regular weights first: the first one is the family's face)
TRAINING_FAMILIES: dict[str, tuple[str, ...]] = {
    "dejavu": (
        "DejaVuSans.ttf",
        "DejaVuSerif.ttf",
        "DejaVuSansMono.ttf",
        "DejaVuSans-Bold.ttf",
        "DejaVuSansCondensed.ttf",
    ),
    "liberation": (
        "LiberationSans-Regular.ttf",
        "LiberationSerif-Regular.ttf",
        "LiberationMono-Regular.ttf",
        "LiberationSans-Bold.ttf",
        "LiberationSansNarrow-Regular.ttf",
    ),
    "noto": ("NotoSans-Regular.ttf", "NotoSerif-Regular.ttf", "NotoSans-Bold.ttf"),
    "freefont": ("FreeSans.ttf", "FreeSerif.ttf", "FreeMono.ttf", "FreeSansBold.ttf"),
    "nimbus": (
        "NimbusSans-Regular.otf",
        "NimbusRoman-Regular.otf",
        "NimbusMonoPS-Regular.otf",
        "NimbusSansNarrow-Regular.otf",
    ),
    "open-sans": ("OpenSans-Regular.ttf", "OpenSans-Bold.ttf", "OpenSans-Light.ttf"),
    "carlito": ("Carlito-Regular.ttf", "Carlito-Bold.ttf"),
}
HELDOUT_FAMILIES: dict[str, tuple[str, ...]] = {
    "lato": ("Lato-Regular.ttf", "Lato-Bold.ttf", "Lato-Light.ttf"),
    "caladea": ("Caladea-Regular.ttf", "Caladea-Bold.ttf"),
    "urw-bookman": ("URWBookman-Light.otf", "URWBookman-Demi.otf"),
    "urw-gothic": ("URWGothic-Book.otf", "URWGothic-Demi.otf"),
    "c059": ("C059-Roman.otf", "C059-Bold.otf"),
    "p052": ("P052-Roman.otf", "P052-Bold.otf"),
}


@lru_cache
def font_path(name: str) -> Path | None:
    """Where ``name`` lies under the font root (any depth), or None."""
    direct = FONT_ROOT / name
    if direct.is_file():
        return direct
    return next(FONT_ROOT.rglob(name), None)


def available(families: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The families' files that are installed here (a family with none is left out)."""
    found = {
        family: tuple(n for n in names if font_path(n) is not None)
        for family, names in families.items()
    }
    return {family: names for family, names in found.items() if names}
