"""Compiles the guard's per-token modules with mypyc into app/guard/_native (optional: without
them the guard runs interpreted, the same code, slower). Needs mypy (the ``native`` extra) and
a C compiler with the Python headers. scripts/setup runs it.

    .venv/bin/python -m app.guard_build            # builds unless a current build is there
    .venv/bin/python -m app.guard_build --force
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .guard import native


def build(folder: Path = native.FOLDER) -> list[Path]:
    """Compile into ``folder`` (replaced whole, its stamp written last); the files built."""
    from mypyc.build import mypycify
    from setuptools import setup

    digest = native.sources_digest()
    root = native.PACKAGE.parent.parent  # where ``app`` is a top-level package
    with tempfile.TemporaryDirectory(prefix="guard-build-") as tmp:
        work = Path(tmp)
        cwd = os.getcwd()
        os.chdir(root)  # mypy names the modules by the packages above their files
        try:
            extensions = mypycify(
                [f"app/guard/{name}.py" for name in native.COMPILED]
                + [f"--cache-dir={work / 'mypy'}"],
                group_name=native.GROUP,
                target_dir=str(work / "c"),
                opt_level="3",
            )
            os.chdir(work)  # not the project's root: setuptools would read its pyproject.toml
            setup(
                name="ocrguard-guard-native",
                ext_modules=extensions,
                script_args=["--quiet", "build_ext", f"--build-lib={work / 'lib'}"]
                + [f"--build-temp={work / 'tmp'}"],
            )
        finally:
            os.chdir(cwd)
        built = sorted((work / "lib" / "app" / "guard").iterdir())
        staged = work / "staged"
        staged.mkdir()
        for path in built:
            shutil.copy2(path, staged / path.name)
        (staged / native.STAMP).write_text(digest + "\n", encoding="ascii")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(staged, folder)
    return [folder / path.name for path in built]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="rebuild a current build too")
    args = parser.parse_args(argv)
    if not args.force and native.state() == "current":
        print(f"{native.FOLDER}: current")
        return 0
    try:
        import mypyc  # noqa: F401
    except ImportError:
        print("mypyc is not installed (pip install -e '.[native]'): the guard runs interpreted")
        return 1
    start = time.perf_counter()
    files = build()
    took = time.perf_counter() - start
    print(f"{native.FOLDER}: {len(files)} compiled files in {took:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
