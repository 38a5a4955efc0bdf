"""``python -m training``: the same commands as ``ocrguard-train`` (training/cli.py)."""

import sys

from .cli import main

sys.exit(main())
