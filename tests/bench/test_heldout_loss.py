"""bench/heldout_loss.py on the embedded model: the loss of pages it reads is far below the
loss of pages it cannot read, and the same pages give the same figure."""

import math

from app.config import EMBEDDED_MODEL
from bench.heldout_loss import heldout_loss


def test_read_pages_cost_less_than_unread_ones_and_the_figure_is_stable():
    losses = heldout_loss(str(EMBEDDED_MODEL), ("line", "open_line"), pages=2, batch=2)
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    # the release reads its own kind of lines (CER ~0.02) and not the open ones (~0.9)
    assert losses["line"] < 0.5 < losses["open_line"]
    again = heldout_loss(str(EMBEDDED_MODEL), ("line",), pages=2, batch=1)
    assert abs(again["line"] - losses["line"]) < 1e-3  # batching (padding) does not change it
