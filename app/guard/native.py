"""Finds the guard's compiled modules (app/guard_build.py) and says whether they may be used.

The guard runs on every generated token, in the server's event loop. Its per-token modules
compiled with mypyc run the same code about 1.6 times faster (bench/results/guard_speed.md);
without them the guard runs as the plain Python beside this file. They are used only when
built from exactly the sources here: a stale build would shadow an edit, so a digest of every
source file of the package is stamped at build time and checked at import.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# Gitignored; package data of the distribution when a wheel or an image builds it first.
FOLDER = PACKAGE / "_native"
STAMP = "SOURCES.sha256"
# The modules that run per token or per line; the rest (configuration, verdicts, the mode
# policy, recovery) run once per request and stay interpreted.
COMPILED = ("structure", "periods", "fuzzy", "stutters", "echoes", "lines", "detector")
# The group's shared library is <GROUP>__mypyc: one library, so that calls between the
# compiled modules are native calls.
GROUP = "app.guard.compiled"
# Set to 0 to run the interpreted guard with a build present (debugging, comparisons). Read
# at import, before any settings exist: the guard imports nothing but the standard library.
ENV = "OCRGUARD_GUARD_NATIVE"


def sources_digest(package: Path = PACKAGE) -> str:
    """SHA-256 over the name and bytes of every source file of the package."""
    digest = hashlib.sha256()
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def state(package: Path = PACKAGE, folder: Path = FOLDER) -> str:
    """``current`` (built from these sources), ``stale`` (from other ones) or ``absent``."""
    try:
        stamp = (folder / STAMP).read_text(encoding="ascii").strip()
    except OSError:
        return "absent"
    return "current" if stamp == sources_digest(package) else "stale"
