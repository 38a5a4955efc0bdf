"""Long steps report progress: plain lines when stderr is not a terminal."""

from __future__ import annotations

from training.progress import Progress


def test_plain_lines_without_a_terminal(capsys):
    with Progress("eval", total=10, unit="page") as progress:
        progress.update(4)  # the first update prints at once
        progress.update(4)  # within the interval: quiet
        progress.update(2, degenerate=1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["eval: 4/10 pages", "eval: 10/10 pages"]
