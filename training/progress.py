"""Progress of a long step: a tqdm bar on a terminal, a plain line now and then otherwise."""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_SECONDS = 10.0
"""How often a plain line is printed when stderr is not a terminal (a log file, CI)."""


class Progress:
    """``with Progress("eval", total=600, unit="page") as bar: bar.update(8)``."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it") -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0
        self._bar = None
        self._last = 0.0
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(desc=desc, total=total, unit=unit, file=sys.stderr)
            except ImportError:
                pass

    def update(self, n: int = 1, **postfix: object) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix)
            return
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY_SECONDS:
            self._last = now
            self._line(postfix)

    def close(self, **postfix: object) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._line(postfix)

    def _line(self, postfix: dict) -> None:
        of = f"/{self.total}" if self.total else ""
        extra = "".join(f", {k} {v}" for k, v in postfix.items())
        units = self.unit[:-1] + "ies" if self.unit.endswith("y") else self.unit + "s"
        print(f"{self.desc}: {self.done}{of} {units}{extra}", file=sys.stderr, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
