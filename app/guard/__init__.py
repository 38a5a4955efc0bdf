"""The degeneration guard: streaming loop detection and the recovery policy (pure Python)."""

from .config import DEFAULT_CONFIG, GuardConfig
from .detector import LoopDetector, scan
from .verdict import LOOP_KINDS, LoopKind, Verdict

__all__ = [
    "DEFAULT_CONFIG",
    "GuardConfig",
    "LOOP_KINDS",
    "LoopDetector",
    "LoopKind",
    "Verdict",
    "scan",
]
