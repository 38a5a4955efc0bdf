"""How many text lines a page image holds: a row projection profile, once per page.

The guard compares it with the lines the model writes: a loop writes more lines than the
page holds, and on a page without text (blank, ruled, noise) any repeated unit is a loop.
Rows are inked when darker than the paper by a margin that adapts to the page's contrast; a
text line is a band of rows each partly inked (a ruled line inks nearly its whole row, and
noise inks every row: neither is text), a few pixels high and at most a third of the page.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_MIN_BAND_ROWS = 4  # pixels: a text line is at least this high...
_MAX_BAND_SHARE = 0.33  # ...and at most this share of the page (noise inks every row)...
_MAX_BAND_ROWS = 60  # ...or of this many rows, whichever is more (a one-line crop)
_ROW_INK = (0.004, 0.45)  # share of a row's pixels inked for it to be text-like
_MIN_CONTRAST = 20  # grey levels between paper and ink below which nothing is ink


def count_text_lines(image: Image.Image) -> int:
    grey = np.asarray(image.convert("L"), dtype=np.int16)
    if grey.size == 0:
        return 0
    paper = int(np.percentile(grey, 90))
    darkest = int(np.percentile(grey, 0.05))
    contrast = paper - darkest
    if contrast < _MIN_CONTRAST:
        return 0
    ink = grey < paper - max(_MIN_CONTRAST, contrast // 3)
    share = ink.mean(axis=1)
    textlike = (share > _ROW_INK[0]) & (share < _ROW_INK[1])
    height = grey.shape[0]
    lines, run = 0, 0
    for row in textlike.tolist() + [False]:
        if row:
            run += 1
            continue
        if _MIN_BAND_ROWS <= run <= max(_MAX_BAND_SHARE * height, _MAX_BAND_ROWS):
            lines += 1
        run = 0
    return lines
