"""The ``ocrguard`` command: serve the API, scan texts with the guard."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

EXAMPLES = """examples:
  ocrguard serve --host 0.0.0.0 --port 8000
  OCRGUARD_MODEL=/models/dharma-ocr-lite OCRGUARD_ENGINE=vllm ocrguard serve
  ocrguard guard scan outputs/*.txt
  ocrguard guard scan --tokenizer models/ocrguard-tiny page.txt
  ocrguard guard scan --image page.png page.txt   # with the page's evidence, as served
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ocrguard",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP service",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    guard = commands.add_parser("guard", help="the loop detector, offline")
    guard_commands = guard.add_subparsers(dest="guard_command", required=True)
    scan = guard_commands.add_parser(
        "scan",
        help="print one JSON line per text file: did the guard trip, where, on what loop",
        epilog="example:\n  ocrguard guard scan bench/guard/corpus/degenerate/*.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument("files", nargs="+", type=Path)
    scan.add_argument(
        "--tokenizer",
        default=None,
        help="model folder whose tokenizer to use (default: the served model's)",
    )
    evidence = scan.add_mutually_exclusive_group()
    evidence.add_argument(
        "--image",
        type=Path,
        help="the page image the texts were read from: the guard counts its text lines, as "
        "the service does, and judges the texts with that evidence",
    )
    evidence.add_argument(
        "--page-lines",
        type=int,
        help="text lines the page holds (instead of --image)",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .server import serve as run_server

        return run_server(args.host, args.port)
    if args.page_lines is not None and args.page_lines < 0:
        parser.error("--page-lines must be >= 0")
    page_lines = args.page_lines
    if args.image is not None:
        page_lines = _count_page_lines(args.image, parser)
    return _scan(args.files, args.tokenizer, page_lines)


def _count_page_lines(image: Path, parser: argparse.ArgumentParser) -> int:
    from PIL import Image, UnidentifiedImageError

    from .page_lines import count_text_lines

    try:
        with Image.open(image) as page:
            return count_text_lines(page)
    except (OSError, UnidentifiedImageError) as exc:
        parser.error(f"--image {image}: {exc}")


def _scan(files: list[Path], tokenizer_path: str | None, page_lines: int | None = None) -> int:
    from transformers import AutoTokenizer

    from .config import get_settings
    from .guard import DEFAULT_CONFIG
    from .labeler import label_text

    path = tokenizer_path or get_settings().model
    local = Path(path).is_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    status = 0
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(json.dumps({"file": str(file), "error": str(exc)}), flush=True)
            status = 1
            continue
        verdict = label_text(tokenizer, text, DEFAULT_CONFIG, page_lines)
        line = {
            "file": str(file),
            "tripped": verdict is not None,
            "kind": None,
            "period": None,
            "onset": None,
            "trip_at": None,
            "repeats": None,
            "tokens": len(tokenizer.encode(text, add_special_tokens=False)),
            "guard_version": DEFAULT_CONFIG.version,
            "page_lines": page_lines,
        }
        if verdict is not None:
            line.update(verdict.as_dict())
        print(json.dumps(line), flush=True)
    return status


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
